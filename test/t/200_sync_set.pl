
# 200_sync_set: the synchronous set of a three-server cluster.
#
#  1. autoha.synchronous_mode = on, synchronous_node_count 1: the sync key
#     lists one standby S; autoha_status() shows 'sync' for S and 'async'
#     for the other replica A.
#  2. S stops streaming while it stays a live member (its walreceiver is
#     SIGSTOPped, the leader's walsender for it terminated): the key moves to
#     A, the leader names A in synchronous_standby_names; the key never lists
#     S once the setting no longer names it.  kill -9 of the leader: A is
#     promoted, never S (not in the synchronous set); every acknowledged row
#     is on A.  Then everything resumes and the cluster settles with a
#     synchronous standby again.
#  3. synchronous_node_count = 2 (postgresql.conf + reload): the leader's
#     synchronous_standby_names is ANY 2 (...) of both replicas and the key
#     lists both.
#  4. strict, node_count 1, both replicas killed: a commit on the leader
#     waits (2 x TTL + 2 s), the leader keeps leading; the replica that was
#     NOT the synchronous standby is started again: the commit completes and
#     its row is on that replica.
#  5. off on reload: the sync key is deleted and synchronous_standby_names is
#     empty again; commits return at once.  on again: the key reappears with
#     a standby.

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
	n            => 3,
	cluster_name => $cluster,
	conf         => { 'autoha.synchronous_mode' => 'on' });
my ($n1, $n2, $n3) = @$nodes;
my %by_name = map { $_->name => $_ } @$nodes;
my $leader_key = ckey($cluster, 'leader');
my $sync_key   = ckey($cluster, 'sync');

# ---------------------------------------------------------------- helpers
# (sync_key, sync_list, sync_key_text, ssn, alive, set_conf_all, write_rows,
# has_all_acked, bg_psql, bg_done, stop_pids, cont_pids and dump_sync_state
# are in AutohaTest.pm)

sub dump_state { my ($what) = @_; return dump_sync_state($etcd, $cluster, $nodes, $what); }

sub check { my ($ok, $name) = @_; ok($ok, $name) or dump_state($name); return $ok; }

# wait until SHOW $guc is $value on every running server
sub wait_show
{
	my ($guc, $value) = @_;
	my $ok = poll_until(sub { !grep { alive($_) && (sql($_, "SHOW $guc") // '') ne $value } @$nodes },
		20, "$guc = $value everywhere");
	ok(defined $ok, "SHOW $guc is $value on every running server");
	return $ok;
}

# acknowledged rows, id => src (write_rows() adds to it)
my %acked;

# Wait until $leader's key lists exactly one standby, named alone in its
# synchronous_standby_names; returns that standby's name.
sub wait_one_sync
{
	my ($leader, $timeout, $among) = @_;
	my $name;
	my $ok = poll_until(
		sub {
			my $k = sync_key($etcd, $cluster) or return 0;
			return 0 unless ($k->{leader} // '') eq $leader->name;
			my $l = sync_list($k);
			return 0 unless defined $l && $l =~ /^node\d+$/;
			return 0 if $among && !grep { $_->name eq $l } @$among;
			return 0 unless (ssn($leader) // '') eq "\"$l\"";
			$name = $l;
			return 1;
		},
		$timeout, 'one synchronous standby in the key and synchronous_standby_names of ' . $leader->name);
	return $name;
}

# ---------------------------------------------------------------- 1. mode on, one sync standby

my ($L) = wait_for_leader($nodes, 30);
is($L && $L->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
wait_show('autoha.synchronous_mode', 'on');
is(sql($n1, 'SHOW autoha.synchronous_node_count'), '1', 'synchronous_node_count is 1 by default');

my $t = now_s();
my $sname = wait_one_sync($n1, 60);
check(defined $sname, 'the key lists exactly one standby, the one node1 names in synchronous_standby_names')
  or BAIL_OUT('no synchronous standby');
note(sprintf('sync key %s (%.2f s)', sync_key_text($etcd, $cluster), now_s() - $t));
my $S = $by_name{$sname};
my ($A) = grep { $_ != $n1 && $_ != $S } @$nodes;
note("synchronous standby S = $sname, other replica A = " . $A->name);

my $st_ok = poll_until(
	sub {
		my %st = map { $_->{name} => $_ } @{ autoha_status($A) || [] };
		return ($st{$sname}{sync_state} // '') eq 'sync' && ($st{ $A->name }{sync_state} // '') eq 'async'
		  && $st{node1} && !defined $st{node1}{sync_state};
	},
	20, 'autoha_status() sync states');
check(defined $st_ok, "autoha_status(): S is 'sync', A is 'async', the leader NULL");
my $i1;
ok(defined poll_until(sub { $i1 = autoha_node($n1); $i1 && join(',', @{ $i1->{sync_standbys} || [] }) eq $sname }, 10,
		'sync_standbys'),
	'autoha_node().sync_standbys on the leader lists S')
  or diag('sync_standbys: ' . $json->encode($i1 && $i1->{sync_standbys}));
is(sql($n1, "SELECT string_agg(application_name || ':' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication"),
	join(',', map { $_->name . ':' . ($_ == $S ? 'sync' : 'async') } sort { $a->name cmp $b->name } ($S, $A)),
	'pg_stat_replication: S sync, A async');

sql_ok($n1, 'CREATE TABLE t200 (id int PRIMARY KEY, src text)');
write_rows($n1, 't200', \%acked, 1, 100, 'on, all up');

# ---------------------------------------------------------------- 2. S stops streaming

my $wr = sql_ok($S, 'SELECT pid FROM pg_stat_wal_receiver');
ok($wr =~ /^\d+$/, "S's walreceiver pid is $wr") or BAIL_OUT('no walreceiver on S');
stop_pids($wr);
my $t_stop = now_s();
my $gone = poll_until(
	sub {
		sql($n1, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = '$sname'");
		return (sql($n1, "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$sname'") // '') eq '0';
	},
	20, "the leader's walsender for S to go");
ok(defined $gone, "the leader's walsender for S is gone (S's walreceiver stopped)");

my @order_bad;
my $moved = poll_until(
	sub {
		# setting first, then the key
		my $s = ssn($n1);
		my $k = sync_key($etcd, $cluster);
		my $l = sync_list($k);
		push @order_bad, sprintf('%.2f s: synchronous_standby_names [%s] but the key lists S (%s)', now_s() - $t_stop, $s,
			sync_key_text($etcd, $cluster))
		  if defined $s && $s !~ /"\Q$sname\E"/ && defined $l && $l =~ /\b\Q$sname\E\b/;
		return defined $l && $l eq $A->name && ($s // '') eq '"' . $A->name . '"';
	},
	40, 'the sync key and synchronous_standby_names to move to A', 0.1);
check(defined $moved, 'the sync key lists A instead of S, and the leader names A in synchronous_standby_names');
note(sprintf('moved to A %.2f s after S stopped streaming; key %s', $moved // -1, sync_key_text($etcd, $cluster)));
is_deeply(\@order_bad, [], 'the key never listed S once synchronous_standby_names no longer named it');
my $iS = autoha_node($S);
ok($iS && !$iS->{is_leader}, 'S is still a running member (its worker answers)');
ok(defined etcd_get($etcd, ckey($cluster, 'members', $sname)), "S's member key is still there");

write_rows($n1, 't200', \%acked, 101, 300, 'on, A sync, S stopped');
my @kids1 = AutohaTest::kill9_node($n1);
my $t_kill = now_s();

my (@bad, $s_reason, $s_last);
my $newL;
my $fo = poll_until(
	sub {
		my $tt = now_s() - $t_kill;
		my $r = in_recovery($S);
		push @bad, sprintf('%.1f s: S in_recovery=%s', $tt, $r // 'undef') if defined $r && !$r;
		my $i = autoha_node($S);
		if ($i)
		{
			$s_last = $i;
			push @bad, sprintf('%.1f s: S is_leader', $tt) if $i->{is_leader};
			$s_reason //= $i->{decision_reason} if ($i->{decision_reason} // '') =~ /not in the synchronous set/;
		}
		my $lk = eval { etcd_get($etcd, $leader_key) };
		push @bad, sprintf('%.1f s: leader key = %s', $tt, $lk) if defined $lk && $lk eq $sname;
		$newL = find_leader([ $A, $S ]);
		return defined $newL;
	},
	60, 'a new leader', 0.2);
is($newL && $newL->name, $A->name, 'A (listed in the sync key) is promoted after kill -9 of the leader')
  or dump_state('failover');
note(sprintf('FAILOVER: %s leads %.2f s after kill -9 of node1', $newL ? $newL->name : '-', $fo // -1));
# and S stays a replica a while longer
my $t_after = now_s();
while (now_s() - $t_after < $TTL)
{
	my $r = in_recovery($S);
	push @bad, sprintf('%.1f s: S in_recovery=%s', now_s() - $t_kill, $r // 'undef') if defined $r && !$r;
	usleep(250_000);
}
is_deeply(\@bad, [], 'S was never promoted and never took the leader key');
note('S decision_reason seen: ' . ($s_reason // ('none matching; last: ' . ($s_last ? ($s_last->{decision_reason} // '') : '?'))));
is(etcd_get($etcd, $leader_key), $A->name, 'the leader key names A');
has_all_acked($A, 't200', \%acked, 30);

# resume everything
cont_pids($wr);
ok(defined restart_killed_node($n1, \@kids1), 'node1 starts again');
my $t_resume = now_s();
$L = $A;
my @reps = grep { $_ != $L } @$nodes;
ok(defined wait_following($L, \@reps, 120), 'S and node1 stream from A')
  or dump_state('resume');
note(sprintf('both replicas streaming from A %.2f s after the resume', now_s() - $t_resume));
# node1 may have been rewound and restarted by pg_autoha_rejoin: a new postmaster
$_->_update_pid(1) for @reps;
my $s2 = wait_one_sync($L, 60, \@reps);
check(defined $s2, 'the cluster settles with one synchronous standby again');
note('sync key after the resume: ' . sync_key_text($etcd, $cluster));
has_all_acked($_, 't200', \%acked) for @reps;

# ---------------------------------------------------------------- 3. synchronous_node_count = 2

set_conf_all($nodes, 'autoha.synchronous_node_count' => 2);
wait_show('autoha.synchronous_node_count', '2');
my $want = join(',', sort map { $_->name } @reps);
my ($ssn2, $list2);
my $two = poll_until(
	sub {
		$ssn2  = ssn($L) // '';
		$list2 = sync_list(sync_key($etcd, $cluster)) // 'absent';
		return 0 unless $ssn2 =~ /^ANY\s+2\s*\(\s*"(node\d+)"\s*,\s*"(node\d+)"\s*\)$/;
		return join(',', sort ($1, $2)) eq $want && $list2 eq $want;
	},
	60, 'ANY 2 (...) and both replicas in the key');
check(defined $two, "node_count 2: synchronous_standby_names is ANY 2 of both replicas and the key lists both");
note("node_count 2: synchronous_standby_names [$ssn2], key " . sync_key_text($etcd, $cluster));
like($ssn2, qr/^ANY\s+2\s*\(\s*"node\d+"\s*,\s*"node\d+"\s*\)$/, 'its form is ANY 2 ("nodeX", "nodeY")');
my $st_two = poll_until(
	sub {
		my %st = map { $_->{name} => $_ } @{ autoha_status($L) || [] };
		return !grep { ($st{ $_->name }{sync_state} // '') ne 'sync' } @reps;
	},
	20, 'both sync in autoha_status()');
ok(defined $st_two, "autoha_status(): both replicas are 'sync'");
write_rows($L, 't200', \%acked, 1001, 1050, 'on, node_count 2');

# ---------------------------------------------------------------- 4. strict, both replicas killed

set_conf_all($nodes, 'autoha.synchronous_node_count' => 1, 'autoha.synchronous_mode' => 'strict');
wait_show('autoha.synchronous_mode', 'strict');
wait_show('autoha.synchronous_node_count', '1');
my $X = wait_one_sync($L, 60, \@reps);
check(defined $X, 'strict, node_count 1: one synchronous standby');
$X = $by_name{ $X // '' } // $reps[0];
my ($Y) = grep { $_ != $X } @reps;
note('strict: synchronous standby ' . $X->name . ', the other replica ' . $Y->name
	  . '; key ' . sync_key_text($etcd, $cluster));
write_rows($L, 't200', \%acked, 2001, 2050, 'strict, all up');

# both at once: with X gone and Y still streaming, strict rightly moves to Y
my ($kx, $ky) = AutohaTest::kill9_nodes($X, $Y);
my @kidsX = @$kx;
my @kidsY = @$ky;
my $t_kill2 = now_s();
ok(defined AutohaTest::wait_pids_gone([ @kidsX, @kidsY ], 30), "both replicas' processes exited");
my $c = bg_psql($L, "INSERT INTO t200 (id, src) VALUES (3001, 'strict, replicas dead') RETURNING id");
my $window = 2 * $TTL + 2;
@bad = ();
my $polls = 0;
while (now_s() - $t_kill2 < $window)
{
	my $tt = now_s() - $t_kill2;
	$polls++;
	push @bad, sprintf('%.1f s: the commit returned (rc %s, out %s, err %s)', $tt, $c->{rc}, $c->{out}, $c->{err})
	  if !@bad && bg_done($c);
	my $i = autoha_node($L);
	push @bad, sprintf('%.1f s: %s not is_leader', $tt, $L->name) unless $i && $i->{is_leader};
	my $s = ssn($L) // '?';
	my $xn = $X->name;
	push @bad, sprintf('%.1f s: synchronous_standby_names = [%s]', $tt, $s) unless $s eq "\"$xn\"" || $s eq '*';
	my $l = sync_list(sync_key($etcd, $cluster)) // 'absent';
	push @bad, sprintf('%.1f s: the key lists [%s]', $tt, $l) unless $l eq $xn;
	usleep(300_000);
}
is_deeply(\@bad, [], "strict: with both replicas dead the commit waits ${window} s and " . $L->name . ' keeps leading, naming ' . $X->name . ' in the key and the setting')
  or dump_state('strict wait');
note("strict, replicas dead: $polls polls; synchronous_standby_names " . (ssn($L) // '?')
	  . ', key ' . sync_key_text($etcd, $cluster));
ok(!bg_done($c), 'the commit is still waiting');

my $t_startY = now_s();
ok(defined restart_killed_node($Y, \@kidsY), $Y->name . ' (not the synchronous standby) starts again');
my $done = poll_until(sub { bg_done($c) }, 60, 'the waiting commit to return', 0.05);
check(defined $done, 'strict: the waiting commit returned once ' . $Y->name . ' was back');
note(sprintf('commit returned %.2f s after %s was started (it waited %.2f s in all); key %s, synchronous_standby_names %s',
		($c->{t_end} // now_s()) - $t_startY, $Y->name, $c->{secs} // -1, sync_key_text($etcd, $cluster),
		ssn($L) // '?'));
# the leader makes the standbys reply once the new setting is in effect:
# without that, a standby with nothing new to say replies only after
# wal_receiver_status_interval (10 s), and the commit waits that long
ok(defined $c->{t_end} && $c->{t_end} - $t_startY < 8,
	'the commit returned within 8 s of ' . $Y->name . "'s start, not after a 10 s status interval")
  or diag(sprintf('%.2f s', ($c->{t_end} // now_s()) - $t_startY));
my $key_at_commit = sync_list(sync_key($etcd, $cluster)) // 'absent';
unlike($key_at_commit, qr/\b\Q${\ $X->name}\E\b/,
	'when the commit returned the key no longer listed the dead ' . $X->name . " (it lists [$key_at_commit])");
is($c->{rc}, 0, 'it succeeded') or diag('psql stderr: ' . ($c->{err} // ''));
is($c->{out}, '3001', 'it returned its row');
$acked{3001} = 'strict, replicas dead' if ($c->{out} // '') eq '3001';
ok(defined poll_until(sub { (sql($Y, 'SELECT count(*) FROM t200 WHERE id = 3001') // '') eq '1' }, 30, 'row 3001'),
	'the row is on ' . $Y->name);
ok(defined restart_killed_node($X, \@kidsX), $X->name . ' starts again');
ok(defined wait_streaming($L, \@reps, 60), 'both replicas stream again');

# ---------------------------------------------------------------- 5. off and on again, on reload

set_conf_all($nodes, 'autoha.synchronous_mode' => 'off');
my $t_off = now_s();
wait_show('autoha.synchronous_mode', 'off');
my $off = poll_until(sub { !defined etcd_get($etcd, $sync_key) && (ssn($L) // '?') eq '' }, 30,
	'the sync key gone and synchronous_standby_names empty');
check(defined $off, 'off: the sync key is deleted and synchronous_standby_names is empty again');
note(sprintf('off: done %.2f s after the reload', now_s() - $t_off));
is(sql($L, "SELECT count(*) FROM pg_stat_replication WHERE sync_state <> 'async'"), '0', 'every replica is async');
my $t_w = now_s();
is(sql($L, "INSERT INTO t200 (id, src) VALUES (4001, 'off') RETURNING id", timeout => 10), '4001', 'off: a commit returns');
cmp_ok(now_s() - $t_w, '<', 5, 'at once');

set_conf_all($nodes, 'autoha.synchronous_mode' => 'on');
my $t_on = now_s();
wait_show('autoha.synchronous_mode', 'on');
my $s3 = wait_one_sync($L, 60, \@reps);
check(defined $s3, 'on again: the sync key reappears with one standby, named in synchronous_standby_names');
note(sprintf('on again: key %s %.2f s after the reload', sync_key_text($etcd, $cluster), now_s() - $t_on));
write_rows($L, 't200', \%acked, 5001, 5010, 'on again');
has_all_acked($_, 't200', \%acked) for @$nodes;

# ---------------------------------------------------------------- 6. an unreadable sync key

# garbage in the key (a member that reads it reports it in last_error, and
# no replica may be promoted on it): the leader rewrites it with its own
# synchronous set within a loop or two
my ($put_ok, undef, $put_err) = AutohaTest::etcdctl($etcd, 10, 'put', $sync_key, 'not json');
ok($put_ok, 'garbage written to the sync key') or diag($put_err);
my $seen_error;
my $fixed = poll_until(
	sub {
		for my $r (@reps)
		{
			my $i = autoha_node($r);
			$seen_error //= $i->{last_error}
			  if $i && ($i->{last_error} // '') =~ /sync key is not/;
		}
		my $k = sync_key($etcd, $cluster);
		return $k && ref $k eq 'HASH' && ($k->{leader} // '') eq $L->name && (sync_list($k) // '') ne '';
	},
	30, 'the leader to rewrite the sync key', 0.05);
check(defined $fixed, 'the leader rewrote the unreadable sync key with its synchronous set');
note('sync key after the rewrite: ' . sync_key_text($etcd, $cluster)
	  . '; a replica reported: ' . ($seen_error // '(nothing: the rewrite came first)'));
write_rows($L, 't200', \%acked, 6001, 6010, 'after the rewrite');

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
note(sprintf("200_sync_set total %.1f s", now_s() - $T0));
done_testing();
