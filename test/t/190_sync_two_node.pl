
# 190_sync_two_node: synchronous mode with one primary, one replica and etcd
# as the arbiter.
#
#  1. autoha.synchronous_mode = on: the leader names node2 in
#     synchronous_standby_names and lists it in the etcd "sync" key;
#     autoha_node() and autoha_status() show it.
#  2. mode on, node2 killed (kill -9): a commit issued at once waits, then
#     completes within a bounded time; by then the sync key no longer lists
#     node2 (sync_standby null) and synchronous_standby_names is empty.
#     Ordering, checked on every poll: the key drops node2 before
#     synchronous_standby_names does, and before the waiting commit returns.
#  3. node1 killed too, node2 started again: node2 is not in the synchronous
#     set, so it is not promoted (3 x TTL + 2 s) and says why in
#     autoha_node().decision_reason.
#  4. node1 started again: it takes the leader key back (it is the sync key's
#     leader); node2 follows, catches up and is listed in the key again;
#     every acknowledged row is on both.
#  5. switch to strict by postgresql.conf + pg_reload_conf(); node2 killed: a
#     commit waits (3 x TTL), node1 keeps leading and keeps naming node2;
#     node2 started again: the commit completes and its row is on node2.
#  6. strict, node2 back in the key: kill -9 of node1; node2 is promoted and
#     has every acknowledged row (no wait for catch-up before the kill).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $T0      = now_s();
my $TTL     = $AutohaTest::TTL;
my $json    = JSON::PP->new->utf8->allow_nonref;
my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(
	etcd         => $etcd,
	n            => 2,
	cluster_name => $cluster,
	conf         => { 'autoha.synchronous_mode' => 'on' });
my ($n1, $n2) = @$nodes;
my $leader_key = ckey($cluster, 'leader');

# ---------------------------------------------------------------- helpers
# (sync_key, sync_list, sync_key_text, ssn, alive, set_conf_all, write_rows,
# has_all_acked, bg_psql, bg_done and dump_sync_state are in AutohaTest.pm)

# Notes for a failure: etcd, autoha_node() of every running server,
# pg_stat_replication of the primaries.
sub dump_state { my ($what) = @_; return dump_sync_state($etcd, $cluster, $nodes, $what); }

# Poll autoha_node() of $node until $field (JSON-encoded, canonical) is
# $want; the worker's view of etcd may be a loop behind.
sub node_field_becomes
{
	my ($node, $field, $want, $name) = @_;
	my $got;
	my $ok = poll_until(
		sub {
			my $i = autoha_node($node) or return 0;
			$got = $json->canonical->encode($i->{$field});
			return $got eq $want;
		},
		10, $name);
	ok(defined $ok, $name) or diag("autoha_node().$field on " . $node->name . " is $got, not $want");
	return $ok;
}

sub check { my ($ok, $name) = @_; ok($ok, $name) or dump_state($name); return $ok; }

# Rows written and acknowledged (id => src; write_rows() adds to it).
my %acked;

# ---------------------------------------------------------------- 1. mode on, both up

my ($l0) = wait_for_leader($nodes, 30);
is($l0 && $l0->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
is(sql($_, 'SHOW autoha.synchronous_mode'), 'on', $_->name . ': autoha.synchronous_mode is on') for ($n1, $n2);

my $secs = poll_until(
	sub {
		my $k = sync_key($etcd, $cluster);
		return $k && ($k->{leader} // '') eq 'node1' && (sync_list($k) // '') eq 'node2'
		  && (ssn($n1) // '') eq '"node2"';
	},
	60, 'sync key listing node2 and synchronous_standby_names "node2"');
check(defined $secs, 'the sync key lists node2 and node1 names "node2" in synchronous_standby_names');
note(sprintf("sync key %s, %.2f s after the cluster was ready", sync_key_text($etcd, $cluster), $secs // -1));
is(ssn($n1), '"node2"', 'SHOW synchronous_standby_names on node1 is "node2"');

my $i1 = autoha_node($n1);
is($i1 && $i1->{synchronous_mode}, 'on', 'autoha_node().synchronous_mode on node1');
is($i1 && $i1->{synchronous_standby_names}, '"node2"', 'autoha_node().synchronous_standby_names on node1');
node_field_becomes($n1, 'sync_standbys', '["node2"]', 'autoha_node().sync_standbys on node1 is {node2}');
my $i2 = autoha_node($n2);
ok($i2 && !defined $i2->{sync_standbys}, 'autoha_node().sync_standbys is NULL on the replica');
# autoha_status() reads the worker's view of etcd: it may be a loop behind
my %st;
ok(defined poll_until(
		sub {
			%st = map { $_->{name} => $_ } @{ autoha_status($n2) || [] };
			return ($st{node2}{sync_state} // '') eq 'sync';
		},
		10, "node2's sync_state sync"),
	"autoha_status() on node2: node2's sync_state is sync")
  or diag('autoha_status(): ' . $json->canonical->encode(\%st));
ok($st{node1} && !defined $st{node1}{sync_state}, "autoha_status(): the leader's sync_state is NULL");
is(sql($n1, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'node2'"), 'sync',
	'pg_stat_replication on node1: node2 is sync');

sql_ok($n1, 'CREATE TABLE t190 (id int PRIMARY KEY, src text)');
write_rows($n1, 't190', \%acked, 1, 100, 'on, both up');

# ---------------------------------------------------------------- 2. mode on, node2 killed

my @kids2 = AutohaTest::kill9_node($n2);
my $t_kill2 = now_s();
# once node2's walreceiver is gone nothing can acknowledge for node2
ok(defined AutohaTest::wait_pids_gone(\@kids2, 30), "node2's processes exited");
my $c = bg_psql($n1, "INSERT INTO t190 (id, src) VALUES (1001, 'on, node2 dead') RETURNING id");

my ($t_key, $t_ssn, $polls) = (undef, undef, 0);
my @order_bad;
poll_until(
	sub {
		$polls++;
		# order of the reads matters: commit state, then the setting, then the key
		my $done = bg_done($c);
		my $s    = ssn($n1);
		my $k    = sync_key($etcd, $cluster);
		my $list = sync_list($k);
		my $t    = now_s() - $t_kill2;
		my $lists2 = defined $list && $list =~ /\bnode2\b/;
		$t_key //= $t if defined $list && !$lists2;
		$t_ssn //= $t if defined $s && $s !~ /node2/;
		push @order_bad, sprintf('%.2f s: the commit has returned but the key still lists node2 (%s)', $t,
			sync_key_text($etcd, $cluster))
		  if $done && $lists2;
		push @order_bad, sprintf('%.2f s: synchronous_standby_names is [%s] but the key still lists node2 (%s)', $t, $s,
			sync_key_text($etcd, $cluster))
		  if defined $s && $s !~ /node2/ && $lists2;
		return $done && defined $t_key && defined $t_ssn;
	},
	40, 'the commit to return, node2 out of the key and of synchronous_standby_names', 0.05);
bg_done($c);
check(defined $c->{rc}, 'mode on: the commit issued after node2 died returned');
is($c->{rc}, 0, 'it succeeded') or diag("psql stderr: " . ($c->{err} // ''));
is($c->{out}, '1001', 'it returned its row');
$acked{1001} = 'on, node2 dead' if ($c->{out} // '') eq '1001';
ok(defined $c->{secs} && $c->{secs} < 20, 'writes flowed again within 20 s')
  or diag('commit took ' . ($c->{secs} // 'forever'));
note(sprintf("mode on, node2 killed: key without node2 at %.2f s, synchronous_standby_names without node2 at %.2f s, "
		  . "commit returned at %.2f s (it waited %.2f s); %d polls",
		$t_key // -1, $t_ssn // -1, ($c->{t_end} // $t_kill2 - 1) - $t_kill2, $c->{secs} // -1, $polls));
is_deeply(\@order_bad, [], 'the key dropped node2 before synchronous_standby_names did and before the commit returned')
  or dump_state('ordering');
my $k = sync_key($etcd, $cluster);
ok($k, 'the sync key still exists (mode on)');
is($k && $k->{leader}, 'node1', 'its leader is node1');
ok($k && exists $k->{sync_standby} && !defined $k->{sync_standby}, 'its sync_standby is null')
  or diag('key: ' . sync_key_text($etcd, $cluster));
is(ssn($n1), '', 'SHOW synchronous_standby_names on node1 is empty');
node_field_becomes($n1, 'sync_standbys', '[]', 'autoha_node().sync_standbys on node1 is empty');
write_rows($n1, 't190', \%acked, 1002, 1050, 'on, node2 dead');

# ---------------------------------------------------------------- 3. node1 killed, node2 back: not promoted

my @kids1 = AutohaTest::kill9_node($n1);
my $t_kill1 = now_s();
ok(defined restart_killed_node($n2, \@kids2), 'node2 starts again');
note(sprintf('node2 started %.2f s after the kill of node1', now_s() - $t_kill1));

my $window = 3 * $TTL + 2;
my (@bad, $reason_seen, $last_info);
my $t_obs = now_s();
while (now_s() - $t_obs < $window)
{
	my $t  = now_s() - $t_kill1;
	my $r  = in_recovery($n2);
	my $lk = eval { etcd_get($etcd, $leader_key) };
	push @bad, sprintf('%.1f s: node2 in_recovery=%s', $t, $r // 'undef') unless defined $r && $r == 1;
	push @bad, sprintf('%.1f s: leader key = %s', $t, $lk) if defined $lk && $lk ne 'node1';
	my $i = autoha_node($n2);
	if ($i)
	{
		$last_info = $i;
		push @bad, sprintf('%.1f s: node2 is_leader', $t) if $i->{is_leader};
		$reason_seen //= $t if ($i->{decision_reason} // '') =~ /not in the synchronous set/;
	}
	usleep(300_000);
}
is_deeply(\@bad, [], "node2 (not in the sync set) not promoted for ${window} s after the kill of node1")
  or dump_state('node2 promoted');
is(etcd_get($etcd, $leader_key), undef, 'no leader key');
ok(defined $reason_seen, 'node2 autoha_node().decision_reason says "not in the synchronous set"')
  or diag('last decision: ' . ($last_info ? ($last_info->{decision} // '') . ' / ' . ($last_info->{decision_reason} // '') : 'none'));
is($last_info && $last_info->{decision}, 'wait', "node2's decision is wait");
note('node2 decision_reason: ' . ($last_info->{decision_reason} // 'undef')) if $last_info;
$k = sync_key($etcd, $cluster);
ok($k && ($k->{leader} // '') eq 'node1' && sync_list($k) eq '', 'the sync key still names leader node1 and no standby')
  or diag('key: ' . sync_key_text($etcd, $cluster));

# ---------------------------------------------------------------- 4. node1 back: leads again

ok(defined restart_killed_node($n1, \@kids1), 'node1 starts again');
my $t_start1 = now_s();
my ($l1, $lsecs) = wait_for_leader($nodes, 60);
is($l1 && $l1->name, 'node1', 'node1 (the sync key leader) takes the leader key again')
  or dump_state('node1 back');
note(sprintf('node1 leads %.2f s after its start', $lsecs // -1));
is(in_recovery($n2), 1, 'node2 is still a replica');
ok(defined wait_streaming($n1, [$n2], 60), 'node2 streams from node1');
$secs = poll_until(sub { (sync_list(sync_key($etcd, $cluster)) // '') eq 'node2' && (ssn($n1) // '') eq '"node2"' },
	60, 'node2 back in the sync key');
check(defined $secs, 'node2 is listed in the sync key again and named in synchronous_standby_names');
note(sprintf('node2 back in the sync key %.2f s after node1 started', now_s() - $t_start1));
has_all_acked($n1, 't190', \%acked);
has_all_acked($n2, 't190', \%acked);

# ---------------------------------------------------------------- 5. strict

set_conf_all($nodes, 'autoha.synchronous_mode' => 'strict');
$secs = poll_until(sub { !grep { (sql($_, 'SHOW autoha.synchronous_mode') // '') ne 'strict' } @$nodes },
	20, 'autoha.synchronous_mode = strict on both');
ok(defined $secs, 'SHOW autoha.synchronous_mode is strict on both servers after the reload');
ok(defined poll_until(sub { my $i = autoha_node($n1); $i && ($i->{synchronous_mode} // '') eq 'strict' }, 20,
		"node1's worker in strict mode"),
	'autoha_node().synchronous_mode on node1 is strict');
is(sync_list(sync_key($etcd, $cluster)), 'node2', 'strict: the key still lists node2');
is(ssn($n1), '"node2"', 'strict: synchronous_standby_names is still "node2"');
write_rows($n1, 't190', \%acked, 2001, 2100, 'strict, both up');

@kids2 = AutohaTest::kill9_node($n2);
$t_kill2 = now_s();
ok(defined AutohaTest::wait_pids_gone(\@kids2, 30), "node2's processes exited");
$c = bg_psql($n1, "INSERT INTO t190 (id, src) VALUES (3001, 'strict, node2 dead') RETURNING id");

$window = 3 * $TTL;
@bad = ();
$polls = 0;
while (now_s() - $t_kill2 < $window)
{
	my $t = now_s() - $t_kill2;
	$polls++;
	push @bad, sprintf('%.1f s: the commit returned (rc %s, out %s, err %s)', $t, $c->{rc}, $c->{out}, $c->{err})
	  if !@bad && bg_done($c);
	my $i = autoha_node($n1);
	push @bad, sprintf('%.1f s: node1 not is_leader', $t) unless $i && $i->{is_leader};
	my $s = ssn($n1) // '?';
	push @bad, sprintf('%.1f s: synchronous_standby_names = [%s]', $t, $s) unless $s eq '"node2"' || $s eq '*';
	my $l = sync_list(sync_key($etcd, $cluster)) // 'absent';
	push @bad, sprintf('%.1f s: the key lists [%s]', $t, $l) unless $l eq 'node2';
	usleep(300_000);
}
is_deeply(\@bad, [], "strict: with node2 dead the commit waits for ${window} s; node1 leads, "
	  . 'names node2 in synchronous_standby_names and keeps it in the key')
  or dump_state('strict wait');
note("strict, node2 dead: $polls polls; synchronous_standby_names " . (ssn($n1) // '?')
	  . ', key ' . sync_key_text($etcd, $cluster));
ok(!bg_done($c), 'the commit is still waiting');
is(sql($n1, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"), '1',
	'node1 shows one backend waiting on SyncRep');

my $t_start2 = now_s();
ok(defined restart_killed_node($n2, \@kids2), 'node2 starts again');
my $done = poll_until(sub { bg_done($c) }, 60, 'the waiting commit to return', 0.05);
check(defined $done, 'strict: the waiting commit returned once node2 was back');
note(sprintf('commit returned %.2f s after node2 was started (it waited %.2f s in all)',
		($c->{t_end} // now_s()) - $t_start2, $c->{secs} // -1));
is($c->{rc}, 0, 'it succeeded') or diag('psql stderr: ' . ($c->{err} // ''));
is($c->{out}, '3001', 'it returned its row');
$acked{3001} = 'strict, node2 dead' if ($c->{out} // '') eq '3001';
ok(defined poll_until(sub { (sql($n2, 'SELECT count(*) FROM t190 WHERE id = 3001') // '') eq '1' }, 30, 'row 3001 on node2'),
	'the row is on node2');

# ---------------------------------------------------------------- 6. strict: kill -9 of node1, node2 promoted

ok(defined wait_streaming($n1, [$n2], 60), 'node2 streams from node1');
check(defined poll_until(sub { (sync_list(sync_key($etcd, $cluster)) // '') eq 'node2' && (ssn($n1) // '') eq '"node2"' },
			60, 'node2 in the key'),
	'node2 is in the sync key and synchronous_standby_names');
# acknowledged writes right up to the kill (no catch-up wait): in strict
# mode each was flushed by node2 before it was acknowledged
write_rows($n1, 't190', \%acked, 4001, 4200, 'strict, just before the kill');
@kids1 = AutohaTest::kill9_node($n1);
$t_kill1 = now_s();
my ($l2, $l2secs) = wait_for_leader([$n2], 60);
is($l2 && $l2->name, 'node2', 'strict: node2 (listed in the sync key) is promoted after kill -9 of node1')
  or dump_state('failover to node2');
note(sprintf('FAILOVER strict: node2 leads %.2f s after kill -9 of node1', $l2secs // -1));
is(etcd_get($etcd, $leader_key), 'node2', 'the leader key names node2');
has_all_acked($n2, 't190', \%acked, 30);
is(sql($n2, "SELECT count(*) FROM t190 WHERE src = 'strict, just before the kill'"), '200',
	'node2 has all 200 rows acknowledged just before the kill');
$k = sync_key($etcd, $cluster);
note('after the failover: sync key ' . sync_key_text($etcd, $cluster)
	  . ', synchronous_standby_names on node2 ' . (ssn($n2) // '?'));
is($k && $k->{leader}, 'node2', 'the sync key now names node2 as its leader');

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
note(sprintf("190_sync_two_node total %.1f s", now_s() - $T0));
done_testing();
