
# 060_nofailover: a replica with autoha.nofailover = on is never promoted:
# when the leader dies the other replica takes over and the nofailover one
# follows it; when that one stops too, the nofailover replica stays a replica.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
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
	node_conf    => { node2 => { 'autoha.nofailover' => 'on' } });
my ($n1, $n2, $n3) = @$nodes;
my ($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
is(sql_ok($n2, 'SHOW autoha.nofailover'), 'on', 'node2 has nofailover on');

sql_ok($n1, 'CREATE TABLE t060 AS SELECT g AS id FROM generate_series(1, 10) g');
$n1->wait_for_catchup($_) for ($n2, $n3);

# ---- leader killed: node3 must win, never node2
AutohaTest::kill9_node($n1);
my ($new, $secs) = wait_for_leader([ $n2, $n3 ], 60);
ok($new, 'a new leader after kill -9');
is($new && $new->name, 'node3', 'node3 (not the nofailover node2) is promoted');
note(sprintf("FAILOVER kill9 (one candidate): %s leader after %.2f s", $new ? $new->name : '-', $secs // -1));
is(in_recovery($n2), 1, 'node2 is still a replica');
ok(defined wait_streaming($n3, [$n2], 60), 'node2 follows node3');
sql_ok($n3, 'INSERT INTO t060 VALUES (11)') if $new && $new == $n3;
ok($n2->poll_query_until('postgres', 'SELECT count(*) = 11 FROM t060'), 'node2 gets the writes of node3');

# ---- the only candidate stops cleanly: node2 stays a replica
$n3->stop;
my $t_stop = now_s();
my $window = 3 * $ttl + 3;
my @bad;
while (now_s() - $t_stop < $window)
{
	my $rec = in_recovery($n2);
	push @bad, sprintf('%.1f s: node2 out of recovery', now_s() - $t_stop) if defined $rec && !$rec;
	Time::HiRes::usleep(300_000);
}
is_deeply(\@bad, [], "nofailover node2 not promoted within ${window} s with no leader");
isnt(etcd_get($etcd, ckey($cluster, 'leader')) // '', 'node2', 'node2 did not take the leader key');
my $i = autoha_node($n2);
ok($i && !$i->{is_leader}, 'node2 is not leader');
note('node2 decision: ' . ($i->{decision} // 'undef') . ' / ' . ($i->{decision_reason} // 'undef')) if $i;
like($i && $i->{decision_reason} // '', qr/nofailover|no.?failover|not eligible|ineligible/i,
	'decision_reason says why node2 does not take over');

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
done_testing();
