
# 140_pause_failover: maintenance mode and manual failover.
#
#  1. autoha_pause() (called on a replica) sets "pause" in the config key;
#     every worker reports paused.
#  2. kill -9 of the leader's server while paused (its worker frozen first,
#     so that the lease is not revoked and expires after the TTL): a manual
#     failover is refused while the lease runs; nobody promotes for
#     3 x TTL + 2 s after the kill; the replicas say why (decision 'wait',
#     "paused").
#  3. misuse while paused and leaderless: switchover refused (paused),
#     failover to an unknown member / a nofailover member / while a request
#     is pending refused.
#  4. autoha_failover('node3') promotes node3 although paused; every write
#     acknowledged before the kill is on it (they were written on an async
#     cluster and the replicas were caught up before the kill: that is what
#     "acknowledged" covers here); node2 follows node3; still paused.
#  5. autoha_history() records the manual failover.
#  6. misuse with a healthy leader while paused; a hand-written switchover
#     request naming a leader that does not lead is dropped by the leader.
#  7. autoha_resume(); misuse checks that need an unpaused cluster; kill -9
#     of node3: automatic failover to node2; the history has both lines.
#  8. privileges: the mutating functions are not for PUBLIC, the history is
#     for pg_monitor.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $T0      = now_s();
my $json    = JSON::PP->new->utf8->allow_nonref;
my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;
my $TTL = $AutohaTest::TTL;

my $leader_key   = ckey($cluster, 'leader');
my $config_key   = ckey($cluster, 'config');
my $failover_key = ckey($cluster, 'failover');

# ---------------------------------------------------------------- helpers

# Run a query that must fail; returns psql's stderr (ERROR, DETAIL, HINT).
sub expect_error
{
	my ($node, $query, $what, @patterns) = @_;
	my ($out, $err) = sql($node, $query, timeout => 60);
	ok(!defined $out, "$what: fails") or diag("it returned: " . ($out // ''));
	like($err, $_, "$what: stderr matches $_") foreach @patterns;
	note("$what: $err");
	return $err;
}

sub config_paused
{
	my $v = etcd_get($etcd, $config_key);
	return undef unless defined $v;
	my $c = eval { $json->decode($v) };
	return undef unless ref $c eq 'HASH';
	return $c->{pause} ? 1 : 0;
}

# paused as every worker reports it (autoha_node() and every autoha_status() row)
sub all_report_paused
{
	my ($want, @which) = @_;
	foreach my $n (@which)
	{
		my $i = autoha_node($n) or return 0;
		return 0 unless ($i->{paused} ? 1 : 0) == $want;
		my $st = autoha_status($n) or return 0;
		return 0 unless @$st;
		foreach my $row (@$st)
		{
			return 0 unless ($row->{paused} ? 1 : 0) == $want;
		}
	}
	return 1;
}

sub etcd_put { my ($k, $v) = @_; my ($ok, $o, $e) = AutohaTest::etcdctl($etcd, 10, 'put', $k, $v); die "etcdctl put: $e" unless $ok; return 1; }
sub etcd_del { my ($k) = @_; my ($ok, $o, $e) = AutohaTest::etcdctl($etcd, 10, 'del', $k); die "etcdctl del: $e" unless $ok; return 1; }

sub member_nofailover
{
	my ($name) = @_;
	my $v = etcd_get($etcd, ckey($cluster, 'members', $name));
	return undef unless defined $v;
	my $m = $json->decode($v);
	return ($m->{tags} && $m->{tags}{nofailover}) ? 1 : 0;
}

sub set_nofailover
{
	my ($node, $on) = @_;
	sql_ok($node, $on ? "ALTER SYSTEM SET autoha.nofailover = on" : "ALTER SYSTEM RESET autoha.nofailover");
	sql_ok($node, "SELECT pg_reload_conf()");
	return poll_until(sub { (member_nofailover($node->name) // -1) == ($on ? 1 : 0) },
		20, $node->name . " member entry nofailover=" . ($on ? 1 : 0));
}

# autoha_history() rows as hashrefs, oldest first
sub history
{
	my ($node) = @_;
	my $out = sql($node,
		"SELECT coalesce(json_agg(json_build_object('timeline', timeline, 'switch_lsn', switch_lsn::text, "
		  . "'reason', reason, 'old_leader', old_leader, 'new_leader', new_leader, "
		  . "'age_s', extract(epoch FROM now() - switched_at)::float8)), '[]') FROM autoha_history()",
		timeout => 10);
	return undef unless defined $out;
	return $json->decode($out);
}

sub log_of { my ($node) = @_; return slurp_file($node->logfile); }

# ---------------------------------------------------------------- 1. pause

my ($l0) = wait_for_leader($nodes, 30);
is($l0 && $l0->name, 'node1', 'node1 leads the new cluster');
is(config_paused() // 0, 0, 'config key (if any) not paused at start');

my ($pout, $perr) = sql($n2, 'SELECT autoha_pause()');
ok(defined $pout, 'autoha_pause() on replica node2 succeeds') or diag($perr);
like($perr, qr/NOTICE:  cluster "\Q$cluster\E" is paused: no automatic failover/,
	'autoha_pause() says the cluster is now paused');
is(config_paused(), 1, 'etcd config key has "pause": true');
note('config key: ' . (etcd_get($etcd, $config_key) // 'absent'));

my $t_pause = now_s();
my $secs = poll_until(sub { all_report_paused(1, $n1, $n2, $n3) }, 20, 'every worker to report paused');
ok(defined $secs, 'autoha_node().paused and autoha_status().paused are true on all three');
note(sprintf("all three workers reported paused %.2f s after autoha_pause()", $secs // -1));

($pout, $perr) = sql($n3, 'SELECT autoha_pause()');
ok(defined $pout, 'a second autoha_pause() succeeds');
like($perr, qr/NOTICE:  cluster "\Q$cluster\E" is already paused/, 'and says it is already paused');

my $i1 = autoha_node($n1);
is($i1 && $i1->{decision}, 'lead', 'paused: the leader keeps leading');
ok($i1 && $i1->{is_leader}, 'node1 is_leader while paused');

# ---------------------------------------------------------------- 2. kill while paused

sql_ok($n1, "CREATE TABLE t140 (id int PRIMARY KEY, src text)");
my $script = join('', map { "INSERT INTO t140 (id, src) VALUES ($_, 'acked') RETURNING id;\n" } 1 .. 300);
my $acked_out = sql_ok($n1, $script, timeout => 60);
my @acked = grep { /^\d+$/ } split /\n/, $acked_out;
is(scalar @acked, 300, '300 inserts acknowledged by node1 (one transaction each)');
my $lsn_before_kill = sql_ok($n1, 'SELECT pg_current_wal_insert_lsn()');
$n1->wait_for_catchup($_, 'replay', $lsn_before_kill) for ($n2, $n3);
my %replay = map { $_->name => sql_ok($_, 'SELECT pg_last_wal_replay_lsn()') } ($n2, $n3);
note("before the kill: node1 insert lsn $lsn_before_kill, replay " . join(', ', map { "$_ $replay{$_}" } sort keys %replay));

# The whole server dies, worker included, before the worker can revoke its
# lease (a plain kill -9 of the postmaster lets the worker notice the
# postmaster's death and revoke the lease at once, so the leader key would
# vanish immediately; that path is exercised in part 7).  Freeze the worker,
# kill -9 the postmaster, then kill -9 the frozen worker: the lease, and
# with it the leader key and node1's member entry, lives until the TTL.
my $wpid = (autoha_node($n1) || {})->{worker_pid} // 0;
ok($wpid > 0, "node1's worker pid is known ($wpid)")
  or BAIL_OUT('no worker pid for node1');
kill 'STOP', $wpid;
my @kids = AutohaTest::kill9_node($n1);
kill 'KILL', $wpid;
my $t_kill = now_s();
ok(scalar(grep { $_ == $wpid } @kids), 'the frozen worker was a child of the killed postmaster');

is(etcd_get($etcd, $leader_key), 'node1', "right after the kill the dead leader's key is still there (lease not revoked)");
# A failover right away is refused: the dead leader's lease (and member
# entry, which still says primary) lives on until the TTL runs out.
my $early = expect_error($n2, "SELECT autoha_failover('node3')",
	'autoha_failover() while the dead leader lease still runs',
	qr/"node1" holds the leader key of cluster/);
note(sprintf("(that attempt was %.2f s after the kill)", now_s() - $t_kill));

my $window = 3 * $TTL + 2;
my ($key_gone_at, $bad, $polls) = (undef, '', 0);
while (now_s() - $t_kill < $window)
{
	$polls++;
	my $lk = eval { etcd_get($etcd, $leader_key) };
	if (defined $lk)
	{
		$bad .= sprintf("%.1f s: leader key = %s; ", now_s() - $t_kill, $lk)
		  if $lk ne 'node1' || defined $key_gone_at;
	}
	else
	{
		$key_gone_at //= now_s() - $t_kill;
	}
	foreach my $n ($n2, $n3)
	{
		my $r = in_recovery($n);
		$bad .= sprintf("%.1f s: %s in_recovery=%s; ", now_s() - $t_kill, $n->name, $r // 'undef')
		  unless defined $r && $r == 1;
	}
	Time::HiRes::usleep(250_000);
}
is($bad, '', "for ${window} s after the kill both replicas stayed in recovery and nobody took the leader key ($polls polls)");
ok(defined $key_gone_at && $key_gone_at > 1 && $key_gone_at < 2 * $TTL + 2,
	"the dead leader's key expired with its lease, about a TTL after the kill");
note(sprintf("leader key of the dead node1 gone %.2f s after the kill (TTL %d s)", $key_gone_at // -1, $TTL));

foreach my $n ($n2, $n3)
{
	my $i = autoha_node($n);
	is($i && $i->{decision}, 'wait', $n->name . ': decision is wait');
	like($i && $i->{decision_reason}, qr/paused/, $n->name . ': decision_reason mentions paused');
	ok($i && $i->{paused}, $n->name . ': autoha_node().paused');
	note($n->name . ' decision_reason: ' . ($i ? $i->{decision_reason} : '?'));
}
like(log_of($n2), qr/pg_autoha: wait: no leader, but the cluster is paused/, 'node2 logged why it waits');

# ---------------------------------------------------------------- 3. misuse, paused and leaderless

expect_error($n2, 'SELECT autoha_switchover()', 'autoha_switchover() while paused',
	qr/ERROR:  cluster "\Q$cluster\E" is paused/, qr/HINT:  .*autoha_resume\(\)/);
expect_error($n3, "SELECT autoha_switchover('node2')", "autoha_switchover('node2') while paused",
	qr/ERROR:  cluster "\Q$cluster\E" is paused/, qr/HINT:  .*autoha_resume\(\)/);
my $e = expect_error($n2, "\\set VERBOSITY verbose\nSELECT autoha_failover('nosuch')",
	"autoha_failover('nosuch')",
	qr/ERROR:  42704: "nosuch" is not a member of cluster "\Q$cluster\E"/,
	qr/DETAIL:  The members are .*"node2"/, qr/DETAIL:  The members are .*"node3"/);
unlike($e, qr/DETAIL:.*"node1"/, 'the dead node1 (member entry expired) is not listed');

ok(defined set_nofailover($n2, 1), 'node2 publishes nofailover');
expect_error($n3, "SELECT autoha_failover('node2')", "autoha_failover('node2') with nofailover on node2",
	qr/ERROR:  member "node2" cannot be promoted: it has autoha.nofailover = on/);
ok(defined set_nofailover($n2, 0), 'node2 nofailover off again');

etcd_put($failover_key, '{"member":"nosuch"}');
expect_error($n2, "SELECT autoha_failover('node3')", 'autoha_failover() while a request is pending',
	qr/ERROR:  a switchover or failover is already in progress/,
	qr/DETAIL:  The failover key names leader "" and member "nosuch"/);
is(etcd_get($etcd, $failover_key), '{"member":"nosuch"}', 'nobody deleted the pending request in a leaderless cluster');
etcd_del($failover_key);
is(in_recovery($n2) . in_recovery($n3), '11', 'still no promotion after the misuse');
is(etcd_get($etcd, $leader_key), undef, 'still no leader key');

# ---------------------------------------------------------------- 4. manual failover

my $t_fo = now_s();
my ($fo, $fo_err) = sql($n2, "SELECT autoha_failover('node3')", timeout => 90);
my $fo_secs = now_s() - $t_fo;
is($fo, 'node3', "autoha_failover('node3') (called on node2) returns node3") or diag($fo_err);
note(sprintf("autoha_failover('node3') returned after %.2f s (%.1f s after the kill)", $fo_secs, now_s() - $t_kill));
is(in_recovery($n3), 0, 'node3 is out of recovery');
is(etcd_get($etcd, $leader_key), 'node3', 'leader key names node3');
is(sql($n3, "INSERT INTO t140 (id, src) VALUES (500000, 'after failover') RETURNING id"), '500000',
	'node3 accepts a write');
my $ids = '{' . join(',', @acked) . '}';
is(sql($n3, "SELECT count(*) FROM t140 WHERE id = ANY('$ids'::int[]) AND src = 'acked'"), '300',
	'every write acknowledged by node1 (and replayed by the replicas before the kill) is on node3');
ok(defined poll_until(sub { !defined etcd_get($etcd, $failover_key) }, 10, 'failover key removed'),
	'the failover key was removed after the failover');

my $follow = wait_streaming($n3, [$n2], 60);
ok(defined $follow, 'node2 streams from node3 (paused does not stop a replica from following)');
note(sprintf("node2 streaming from node3 %.2f s after autoha_failover() returned", now_s() - $t_fo - $fo_secs));
ok($n2->poll_query_until('postgres', "SELECT count(*) = 301 FROM t140 WHERE id = 500000 OR src = 'acked'"),
	'node2 has the acknowledged rows and the row written on node3');
is(config_paused(), 1, 'config key still paused after the manual failover');
ok(defined poll_until(sub { all_report_paused(1, $n2, $n3) }, 10, 'paused after failover'),
	'node2 and node3 still report paused');
my $st3 = autoha_status($n3);
my ($row3) = grep { $_->{name} eq 'node3' } @{ $st3 || [] };
is($row3 && $row3->{timeline}, 2, 'node3 runs on timeline 2');

# ---------------------------------------------------------------- 5. history

my $h;
ok(defined poll_until(sub { $h = history($n3); $h && @$h >= 1 }, 20, 'a history line'),
	'autoha_history() has a line after the manual failover');
is(scalar @{ $h || [] }, 1, 'exactly one line');
my $h1 = ($h || [])->[0] || {};
is($h1->{timeline},   1,                            'history: timeline 1 ended');
is($h1->{reason},     'manual failover from node1', 'history: reason');
is($h1->{old_leader}, 'node1',                      'history: old_leader');
is($h1->{new_leader}, 'node3',                      'history: new_leader');
ok(defined $h1->{switch_lsn} && defined lsn_int($h1->{switch_lsn})
	  && lsn_int($h1->{switch_lsn}) >= lsn_int($lsn_before_kill),
	"history: switch_lsn $h1->{switch_lsn} is at or after the last acknowledged write ($lsn_before_kill)");
ok(defined $h1->{age_s} && $h1->{age_s} >= -5 && $h1->{age_s} < 300,
	'history: switched_at is within the last minutes') or diag("age: " . ($h1->{age_s} // 'null'));
note('history after manual failover: ' . $json->encode($h || []));
like(log_of($n3), qr/pg_autoha: history: timeline 1 ended at [0-9A-F]+\/[0-9A-F]+ \(manual failover from node1\); "node3" leads on timeline 2/,
	'node3 logged the history line');

# ---------------------------------------------------------------- 6. misuse with a healthy leader (paused)

expect_error($n2, "SELECT autoha_failover('node2')", "autoha_failover('node2') with a healthy leader",
	qr/ERROR:  "node3" holds the leader key of cluster "\Q$cluster\E"\s+DETAIL:  Its member entry shows a running primary/,
	qr/HINT:  If it is down, its lease expires within autoha.ttl/);
expect_error($n2, "SELECT autoha_switchover('node3')", "autoha_switchover('node3') while paused",
	qr/ERROR:  cluster "\Q$cluster\E" is paused/);

# A hand-written switchover request naming a leader that does not lead:
# the leader cancels it (the leader check comes before the pause check in
# decide_leader, both cancel anyway).
my $log3_pos = -s $n3->logfile;
etcd_put($failover_key, '{"leader":"nosuch","member":"node2"}');
my $t_put = now_s();
expect_error($n2, "SELECT autoha_switchover('node2')", 'switchover with a hand-written request, paused',
	qr/ERROR:  cluster "\Q$cluster\E" is paused/);
my $gone = poll_until(sub { !defined etcd_get($etcd, $failover_key) }, 10, 'hand-written request to disappear', 0.05);
ok(defined $gone, 'paused: the leader drops a request that names a leader that does not lead');
note(sprintf("hand-written request gone %.2f s after it was written (paused)", now_s() - $t_put));
ok(defined poll_until(sub { substr(log_of($n3), $log3_pos) =~ /WARNING:  pg_autoha: lead: cancelled the switchover request: it names leader "nosuch", but "node3" leads/ },
		5, 'cancel warning'),
	'node3 logged the cancellation as a WARNING');
is(in_recovery($n2), 1, 'node2 still a replica');

# ---------------------------------------------------------------- 7. resume, then automatic failover

($pout, $perr) = sql($n2, 'SELECT autoha_resume()');
ok(defined $pout, 'autoha_resume() succeeds') or diag($perr);
like($perr, qr/NOTICE:  cluster "\Q$cluster\E" is no longer paused/, 'autoha_resume() says so');
is(config_paused() // 0, 0, 'config key no longer paused');
note('config key after resume: ' . (etcd_get($etcd, $config_key) // 'absent'));
$secs = poll_until(sub { all_report_paused(0, $n2, $n3) }, 20, 'every worker to report not paused');
ok(defined $secs, 'paused is false on node2 and node3');
note(sprintf("both workers reported not paused %.2f s after autoha_resume()", $secs // -1));
($pout, $perr) = sql($n3, 'SELECT autoha_resume()');
like($perr, qr/NOTICE:  cluster "\Q$cluster\E" is already not paused/, 'a second autoha_resume() says already not paused');

expect_error($n2, "SELECT autoha_switchover('node3')", "autoha_switchover('node3')",
	qr/ERROR:  "node3" is already the leader of cluster "\Q$cluster\E"/);
expect_error($n2, "\\set VERBOSITY verbose\nSELECT autoha_switchover('nosuch')", "autoha_switchover('nosuch')",
	qr/ERROR:  42704: "nosuch" is not a member/, qr/DETAIL:  The members are "node\d", "node\d"\./);
ok(defined set_nofailover($n2, 1), 'node2 publishes nofailover (unpaused)');
expect_error($n3, "SELECT autoha_switchover('node2')", "autoha_switchover('node2') with nofailover",
	qr/ERROR:  member "node2" cannot take over from "node3"/, qr/DETAIL:  It has autoha.nofailover = on/);
expect_error($n3, "SELECT autoha_switchover()", 'autoha_switchover() with no eligible replica',
	qr/ERROR:  no member of cluster "\Q$cluster\E" can take over from "node3"/);
ok(defined set_nofailover($n2, 0), 'node2 nofailover off again');

# A pending request.  The leader drops a request that names another leader
# at its next loop (loop_wait 500 ms), so the check races with it: the
# target is the leader itself, so that a lost race gives "already the
# leader" (checked after the pending request) and moves nothing.
my ($in_progress, $attempts) = (0, 0);
while (!$in_progress && $attempts < 8)
{
	$attempts++;
	etcd_put($failover_key, '{"leader":"nosuch","member":"node2"}');
	my $t = now_s();
	my ($o, $err) = sql($n2, "SELECT autoha_switchover('node3')", timeout => 30);
	if (defined $o)
	{
		fail("autoha_switchover('node3') succeeded: $o");
		last;
	}
	if ($err =~ /already in progress/)
	{
		$in_progress = 1;
		like($err, qr/DETAIL:  The failover key names leader "nosuch" and member "node2"/, 'the error names the pending request');
	}
	else
	{
		like($err, qr/"node3" is already the leader/, "attempt $attempts lost the race to the leader's cleanup");
	}
	my $g = poll_until(sub { !defined etcd_get($etcd, $failover_key) }, 10, 'request dropped', 0.05);
	ok(defined $g, "unpaused: the leader dropped the hand-written request (attempt $attempts)");
	note(sprintf("attempt %d: request gone %.2f s after it was written", $attempts, now_s() - $t));
}
ok($in_progress, "autoha_switchover() refused with 'already in progress' while a request is pending ($attempts attempt(s))");
my $l = find_leader([ $n2, $n3 ]);
is($l && $l->name, 'node3', 'node3 still leads after the misuse');

sql_ok($n3, "INSERT INTO t140 (id, src) VALUES (500001, 'before 2nd kill')");
my $lsn_before_kill2 = sql_ok($n3, 'SELECT pg_current_wal_insert_lsn()');
$n3->wait_for_catchup($n2, 'replay', $lsn_before_kill2);

AutohaTest::kill9_node($n3);
my $t_kill2 = now_s();
my ($new, $lead_secs) = wait_for_leader([$n2], 60);
is($new && $new->name, 'node2', 'unpaused: node2 takes over automatically after kill -9 of node3');
note(sprintf("FAILOVER: node2 leader %.2f s after kill -9 of node3", $lead_secs // -1));
is(sql($n2, "INSERT INTO t140 (id, src) VALUES (500002, 'after 2nd failover') RETURNING id"), '500002',
	'node2 accepts a write');
is(sql($n2, "SELECT count(*) FROM t140 WHERE id = ANY('$ids'::int[]) OR id IN (500000, 500001)"), '302',
	'node2 has every row written before the second kill');

ok(defined poll_until(sub { $h = history($n2); $h && @$h >= 2 }, 20, 'two history lines'),
	'autoha_history() has two lines');
is(scalar @{ $h || [] }, 2, 'exactly two lines');
my ($hA, $hB) = @{ $h || [] };
is($hA && $hA->{reason}, 'manual failover from node1', 'first line unchanged');
is($hB && $hB->{timeline},   2,                    'second line: timeline 2 ended');
is($hB && $hB->{reason},     'failover from node3', 'second line: reason');
is($hB && $hB->{old_leader}, 'node3',              'second line: old_leader');
is($hB && $hB->{new_leader}, 'node2',              'second line: new_leader');
ok($hB && lsn_int($hB->{switch_lsn}) >= lsn_int($lsn_before_kill2),
	"second line: switch_lsn at or after $lsn_before_kill2");
note('history after automatic failover: ' . $json->encode($h || []));

# ---------------------------------------------------------------- 8. privileges

sql_ok($n2, 'CREATE ROLE plain LOGIN');
my @as_plain = (extra_params => [ '-U', 'plain' ]);
foreach my $q ('SELECT autoha_pause()', 'SELECT autoha_resume()', "SELECT autoha_failover('node2')",
	"SELECT autoha_switchover('node2')", 'SELECT count(*) FROM autoha_history()')
{
	my ($o, $err) = sql($n2, $q, @as_plain);
	ok(!defined $o, "as plain: $q fails");
	like($err, qr/permission denied for function autoha_/, "as plain: $q: permission denied");
}
is(config_paused() // 0, 0, 'the refused autoha_pause() changed nothing');
sql_ok($n2, 'GRANT pg_monitor TO plain');
my ($cnt, $cerr) = sql($n2, 'SELECT count(*) FROM autoha_history()', @as_plain);
is($cnt, '2', 'a pg_monitor member reads autoha_history()') or diag($cerr);
($cnt, $cerr) = sql($n2, 'SELECT autoha_pause()', @as_plain);
like($cerr, qr/permission denied for function autoha_pause/, 'pg_monitor does not grant autoha_pause()');

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
note(sprintf("140_pause_failover total %.1f s", now_s() - $T0));

done_testing();
