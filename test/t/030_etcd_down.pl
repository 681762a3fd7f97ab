
# 030_etcd_down: with etcd down nobody promotes, even when the leader dies;
# the replicas say why (last_error, view_stale).  Once etcd is back, the dead
# leader's lease expires and a replica takes over.

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
my $nodes   = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;
my ($old) = wait_for_leader($nodes, 30);
is($old && $old->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
my @replicas = ($n2, $n3);

sql_ok($n1, "CREATE TABLE t030 AS SELECT g AS id FROM generate_series(1, 100) g");
$n1->wait_for_catchup($_) for @replicas;

# ---- etcd down, then the leader dies
$etcd->stop('KILL');
my $t_etcd = now_s();
AutohaTest::kill9_node($n1);
my $t_kill = now_s();

# For 3 x ttl, no replica may leave recovery or claim leadership.
my @promoted;
my $window = 3 * $ttl;
while (now_s() - $t_kill < $window)
{
	foreach my $r (@replicas)
	{
		my $rec = in_recovery($r);
		push @promoted, $r->name . ' left recovery' if defined $rec && !$rec;
		my $i = autoha_node($r);
		push @promoted, $r->name . ' claims is_leader' if $i && $i->{is_leader};
	}
	Time::HiRes::usleep(300_000);
}
is_deeply(\@promoted, [], "no replica promoted within ${window} s with etcd down");
is(in_recovery($_), 1, $_->name . ' still in recovery') for @replicas;

foreach my $r (@replicas)
{
	my $name = $r->name;
	my $i;
	ok(defined poll_until(sub { $i = autoha_node($r); $i && ($i->{last_error} // '') ne '' },
			10, "$name last_error"),
		"$name: autoha_node().last_error is set");
	note("$name last_error: " . ($i->{last_error} // 'undef') . "; decision: "
		  . ($i->{decision} // '') . " / " . ($i->{decision_reason} // '')) if $i;
	my $st;
	ok(defined poll_until(sub { $st = autoha_status($r); $st && @$st && !grep { !$_->{view_stale} } @$st },
			10, "$name view_stale"),
		"$name: autoha_status() still answers, every row view_stale");
	note("$name autoha_status(): " . join(', ', map { "$_->{name}/$_->{role}/age=$_->{view_age}" } @{ $st || [] }));
}

# ---- etcd back: the old lease expires, one replica takes over
$etcd->start;
my $t_back = now_s();
note(sprintf("etcd was down for %.1f s", $t_back - $t_etcd));
my ($new, $secs) = wait_for_leader(\@replicas, 60);
ok($new, 'a replica is promoted once etcd is back');
note(sprintf("FAILOVER etcd-back: %s leader %.2f s after etcd restart (ttl %d s)",
		$new ? $new->name : '-', $secs // -1, $ttl));
if ($new)
{
	ok(defined poll_until(sub { (etcd_get($etcd, ckey($cluster, 'leader')) // '') eq $new->name }, 30,
			'leader key'),
		'leader key names ' . $new->name);
	my ($other) = grep { $_ != $new } @replicas;
	is(in_recovery($other), 1, $other->name . ' stays a replica');
	ok(defined wait_streaming($new, [$other], 60), $other->name . ' streams from ' . $new->name);
	sql_ok($new, 'INSERT INTO t030 VALUES (101)');
	ok($other->poll_query_until('postgres', 'SELECT count(*) = 101 FROM t030'),
		'writes on the new leader reach ' . $other->name);
	ok(defined poll_until(sub { my $i = autoha_node($other); $i && ($i->{leader} // '') eq $new->name }, 30, 'leader seen'),
		$other->name . ': autoha_node() names the new leader');
	ok(defined poll_until(sub { my $st = autoha_status($other); $st && @$st && !grep({ $_->{view_stale} } @$st) }, 30, 'fresh view'),
		$other->name . ': view no longer stale');
}
is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');

done_testing();
