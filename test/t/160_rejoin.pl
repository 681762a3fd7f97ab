
# 160_rejoin: a diverged old primary comes back by itself.
#
#  - the leader acknowledges writes its replicas never receive (its WAL
#    senders are stopped), then is killed with kill -9; a replica takes
#    over without those writes;
#  - the old primary's data directory is started again as it was (a primary,
#    no standby.signal): it is fenced at birth, its worker sees another
#    leader, writes standby.signal and primary_conninfo and crash-restarts
#    the server into standby mode; there it finds its WAL went past the new
#    timeline's fork point, and starts pg_autoha_rejoin --restart, which
#    stops it, runs pg_rewind from the leader and starts it again as a
#    replica; it then streams from the new leader on the new timeline, and
#    the divergent rows are gone -- with no human step;
#  - it never acknowledges a write on the way (tried continuously), and
#    autoha_node() says whom it follows;
#  - paused, a server made a primary behind the cluster's back (promoted by
#    hand) stays a fenced primary and says why; autoha_resume() lets it
#    rejoin, through pg_rewind again.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;
my ($old) = wait_for_leader($nodes, 30);
is($old && $old->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');

sql_ok($n1, "CREATE TABLE t160 (id int PRIMARY KEY, src text)");
sql_ok($n1, "INSERT INTO t160 SELECT g, 'before' FROM generate_series(1, 1000) g");
$n1->wait_for_catchup($_) for ($n2, $n3);

# writes that only node1 gets: its WAL senders are stopped (stopping the
# receivers instead would not do: the kernel's socket buffers would still
# take the WAL in, and deliver it after the kill)
my @senders = split /\n/, sql_ok($n1, "SELECT pid FROM pg_stat_replication WHERE application_name IN ('node2', 'node3')");
is(scalar(grep { /^\d+$/ } @senders), 2, 'node1 has a WAL sender for each replica');
kill 'STOP', @senders;
for my $i (1 .. 50)
{
	sql_ok($n1, "INSERT INTO t160 VALUES (2000 + $i, 'divergent')");
}
is(sql($n1, "SELECT count(*) FROM t160 WHERE src = 'divergent'"), '50', 'node1 acknowledged 50 divergent writes');

# Try to write on $node for up to $secs or until $done->() is true; returns
# the list of writes it acknowledged (must stay empty on a returning primary).
my $next_id = 100000;
sub hammer_until
{
	my ($node, $secs, $done) = @_;
	my @acked;
	my $t0 = now_s();
	my $ok = poll_until(
		sub {
			my $id = $next_id++;
			my $r = sql($node, "INSERT INTO t160 VALUES ($id, 'returning primary') RETURNING id", timeout => 2);
			push @acked, sprintf('%.2f s: id %d', now_s() - $t0, $id) if defined $r && $r eq $id;
			return $done->();
		},
		$secs, 'the returning primary', 0.05);
	return ($ok, @acked);
}

# ---------------------------------------------------------------- kill -9, failover
my @kids = AutohaTest::kill9_node($n1);
kill 'KILL', @senders;
my ($new, $secs) = wait_for_leader([ $n2, $n3 ], 60);
ok($new, 'a replica takes over after kill -9 of node1') or BAIL_OUT('no failover');
note(sprintf('%s leads %.2f s after the kill', $new->name, $secs));
my ($other) = grep { $_ != $new } ($n2, $n3);
sql_ok($new, "INSERT INTO t160 VALUES (5000, 'new leader')");

# ---------------------------------------------------------------- node1 returns
ok(!-e $n1->data_dir . '/standby.signal', 'node1\'s data directory has no standby.signal');
my $log_offset = -s $n1->logfile;
my $started = restart_killed_node($n1, \@kids);
ok(defined $started, 'node1\'s data directory starts again') or BAIL_OUT('node1 does not start');
my $t_start = now_s();
my ($rejoined, @acked) = hammer_until($n1, 90, sub { (in_recovery($n1) // 0) == 1 });
ok(defined $rejoined, 'node1 comes back in recovery by itself');
$n1->_update_pid(1);
note(sprintf('node1 in recovery %.2f s after pg_ctl start returned', $rejoined // -1));
is_deeply(\@acked, [], 'node1 acknowledged no write while it rejoined')
  or diag(scalar(@acked) . " writes acknowledged, first: $acked[0]");

# (wait_following: before its rewind node1 streams its old timeline for a
# moment, which must not count)
my $stream = wait_following($new, [ $other, $n1 ], 90);
ok(defined $stream, 'node1 streams from ' . $new->name . ' through its slot');
$n1->_update_pid(1);	# pg_autoha_rejoin restarted it
note(sprintf('node1 streaming %.2f s after its start', now_s() - $t_start));
ok(defined poll_until(sub { (sql($n1, 'SELECT count(*) FROM t160 WHERE id = 5000') // '') eq '1' }, 30,
		'the new leader\'s row on node1'),
	'node1 has the row written on the new leader after the failover');
is(sql($n1, 'SELECT count(*) FROM t160 WHERE id <= 1000'), '1000', 'node1 kept every replicated row');
is(sql($n1, "SELECT count(*) FROM t160 WHERE src = 'divergent'"), '0', 'the divergent rows are gone from node1');
is(sql($new, "SELECT count(*) FROM t160 WHERE src = 'divergent'"), '0', 'and were never on the new leader');
is(sql($n1, 'SELECT received_tli FROM pg_stat_wal_receiver'), '2', 'node1 follows timeline 2');
my $info = autoha_node($n1);
ok($info && ($info->{leader} // '') eq $new->name && !$info->{is_leader},
	'node1 autoha_node() names ' . $new->name . ' as leader');
ok($info && $info->{fenced}, 'node1 is fenced');
my $log = slurp_file($n1->logfile, $log_offset);
like($log, qr/pg_autoha: demote: member "\Q${\ $new->name}\E" holds the leader key but this server is a primary/,
	'node1 log: the worker decided to demote');
like($log, qr/restarting this server as a replica of "\Q${\ $new->name}\E"/, 'node1 log: crash restart into standby mode');
like($log, qr/entering standby mode/, 'node1 log: the startup process entered standby mode');
like($log, qr/pg_autoha: rewind: this server's WAL went past [0-9A-F]+\/[0-9A-F]+, where leader "\Q${\ $new->name}\E"'s timeline forked off timeline 1/,
	'node1 log: the worker found its WAL diverged');
like($log, qr/\[pg_rewind\] pg_rewind: Done!/, 'node1 log: pg_rewind ran');
like($log, qr/pg_autoha_rejoin: rewound and made a standby of "\Q${\ $new->name}\E"; server restarted/,
	'node1 log: pg_autoha_rejoin restarted it as a standby');
is(etcd_get($etcd, ckey($cluster, 'leader')), $new->name, 'the leader key did not move');

# ---------------------------------------------------------------- paused: no rejoin
my $prev = $new;
sql_ok($other, 'SELECT autoha_pause()');
ok(defined poll_until(sub { my $i = autoha_node($n1); $i && $i->{paused} }, 30, 'node1 to see the pause'),
	'node1 sees the cluster paused');
# stop the leader cleanly: paused, nobody takes over; start it again: it leads
# again.  Then make node1 a primary behind everyone's back (promote it by
# hand): paused, it must stay a fenced primary.
$n1->promote;
ok(defined poll_until(sub { (in_recovery($n1) // 1) == 0 }, 30, 'node1 promoted by hand'),
	'node1 was promoted by hand while paused');
my ($r2, @acked2) = hammer_until($n1, 6, sub { 0 });
is_deeply(\@acked2, [], 'the hand-promoted node1 acknowledged no write (it does not hold the lease)');
is(in_recovery($n1), 0, 'paused: node1 stays a primary (no automatic rejoin)');
$info = autoha_node($n1);
like($info->{decision_reason} // '', qr/paused/, 'node1 autoha_node() says it stays because the cluster is paused');
is(etcd_get($etcd, ckey($cluster, 'leader')), $prev->name, 'the leader is unchanged');

# resume: node1 rejoins (it has a timeline of its own now, so it needs
# pg_rewind when its WAL went past the fork; it may or may not have)
$log_offset = -s $n1->logfile;
sql_ok($other, 'SELECT autoha_resume()');
my $back = poll_until(sub { (in_recovery($n1) // 0) == 1 }, 90, 'node1 to rejoin after resume');
ok(defined $back, 'after autoha_resume() node1 rejoins as a replica');
ok(defined wait_streaming($prev, [ $other, $n1 ], 120), 'node1 streams from ' . $prev->name . ' again');
$n1->_update_pid(1);
$log = slurp_file($n1->logfile, $log_offset);
like($log, qr/pg_autoha: rewind: this server is on timeline 3, which leader "\Q${\ $prev->name}\E" \(timeline 2\) never had/,
	'node1 log: its own timeline 3 is found diverged');
is(sql($n1, 'SELECT count(*) FROM t160 WHERE id = 5000'), '1', 'node1 has the leader\'s data');

done_testing();
