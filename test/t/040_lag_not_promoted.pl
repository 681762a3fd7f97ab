
# 040_lag_not_promoted: a replica that is more than maximum_lag_on_failover
# behind the last known leader position is never promoted automatically, and
# says so in autoha_node().decision_reason.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $ttl     = $AutohaTest::TTL;
my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(
	etcd         => $etcd,
	n            => 3,
	cluster_name => $cluster,
	conf         => { 'autoha.maximum_lag_on_failover' => "'1MB'" });
my ($n1, $n2, $n3) = @$nodes;
my ($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
is(sql_ok($n2, 'SHOW autoha.maximum_lag_on_failover'), '1MB', 'maximum_lag_on_failover is 1MB');

sql_ok($n1, "CREATE TABLE t040 (id int, pad text)");
$n1->wait_for_catchup($_) for ($n2, $n3);

# Only node2 can be a candidate; then node2 falls behind while it is down.
$n3->stop;
$n2->stop;
# node2 cannot be further than node1's position now
my $pos2 = sql_ok($n1, 'SELECT pg_current_wal_lsn()');

sql_ok($n1, "INSERT INTO t040 SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 20000) g");
sql_ok($n1, 'CHECKPOINT');
my $lsn1 = sql_ok($n1, 'SELECT pg_current_wal_lsn()');
my $behind = lsn_int($lsn1) - lsn_int($pos2);
note(sprintf("node2 is %.1f MB behind node1 (%s vs %s)", $behind / 1048576, $pos2, $lsn1));
cmp_ok($behind, '>=', 16 * 1048576, 'node2 is at least 16 MB behind');

# The leader publishes its position in the status key (it outlives the
# leader's lease, unlike members/node1): wait until it shows the new WAL.
my $optime;
my $pub = poll_until(
	sub {
		my $s = etcd_get($etcd, ckey($cluster, 'status')) // return 0;
		$optime = eval { JSON::PP->new->allow_bignum->decode($s)->{optime} } // return 0;
		return $optime - lsn_int($pos2) >= 16 * 1048576;
	},
	30, 'status optime to show the new leader position');
ok(defined $pub, 'the leader published its position in the status key')
  or diag("status key: " . (etcd_get($etcd, ckey($cluster, 'status')) // 'absent')
	  . "\netcd:\n" . etcd_dump($etcd, $cluster));

# ---- the leader dies while node2 is down, then node2 comes back
AutohaTest::kill9_node($n1);
my $t_kill = now_s();
$n2->start;

my $window = 3 * $ttl + 5;
my @bad;
my $last;
while (now_s() - $t_kill < $window)
{
	my $rec = in_recovery($n2);
	push @bad, sprintf('%.1f s: node2 out of recovery', now_s() - $t_kill) if defined $rec && !$rec;
	$last = autoha_node($n2) // $last;
	push @bad, sprintf('%.1f s: node2 is_leader', now_s() - $t_kill) if $last && $last->{is_leader};
	Time::HiRes::usleep(300_000);
}
is_deeply(\@bad, [], "lagging node2 not promoted within ${window} s");
is(in_recovery($n2), 1, 'node2 still in recovery');
isnt(etcd_get($etcd, ckey($cluster, 'leader')) // '', 'node2', 'node2 did not take the leader key');

my $info;
ok(defined poll_until(sub { $info = autoha_node($n2); $info && ($info->{decision_reason} // '') =~ /lag/i },
		10, 'decision_reason to mention the lag'),
	'autoha_node().decision_reason on node2 mentions the lag');
note("node2 decision: " . ($info->{decision} // 'undef') . ' / ' . ($info->{decision_reason} // 'undef')
	  . '; last_error: ' . ($info->{last_error} // '')) if $info;
isnt(lc($info->{decision} // ''), 'promote', 'node2 decision is not promote') if $info;
is(sql($n2, 'SELECT count(*) FROM t040'), '0', 'node2 indeed lacks the rows written while it was down');

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
done_testing();
