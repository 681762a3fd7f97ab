
# 050_foreign_system: a server whose system identifier differs from the
# cluster's initialize key is refused: clear error, no key written, and the
# server is left as it is.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(etcd => $etcd, n => 1, cluster_name => $cluster);
my ($n1) = @$nodes;
my $sysid1 = sql_ok($n1, 'SELECT system_identifier FROM pg_control_system()');
is(etcd_get($etcd, ckey($cluster, 'initialize')), $sysid1, 'initialize holds node1\'s system identifier');

# An unrelated server with the extension installed: it first runs as the
# leader of its own one-server cluster (so CREATE EXTENSION can run there),
# then is pointed, by mistake, at the cluster of node1.
my $own = cluster_name_for_test('own');
my $f   = PostgreSQL::Test::Cluster->new('foreign');
$f->init(allows_streaming => 1);
autoha_conf($f, etcd => $etcd, cluster_name => $own, node_name => 'foreign');
$f->start;
ok(defined poll_until(sub { (etcd_get($etcd, ckey($own, 'leader')) // '') eq 'foreign' }, 60,
		'foreign to lead its own cluster'),
	'foreign leads its own cluster first');
my $err;
ok(defined poll_until(sub { my $r; ($r, $err) = sql($f, 'CREATE EXTENSION IF NOT EXISTS pg_autoha'); defined $r },
		60, 'CREATE EXTENSION on foreign'),
	'extension created on foreign') or diag($err);
my $sysid_f = sql_ok($f, 'SELECT system_identifier FROM pg_control_system()');
isnt($sysid_f, $sysid1, 'foreign has another system identifier');
$f->stop;

my $before = etcd_get_prefix($etcd, ckey($cluster) . '/');
my $auto_before = slurp_file($f->data_dir . '/postgresql.auto.conf');

$f->append_conf('postgresql.conf', "autoha.cluster_name = '$cluster'\n");
my $log_offset = -s $f->logfile;
$f->start;
is(sql_ok($f, 'SHOW autoha.cluster_name'), $cluster, "foreign now configured for $cluster");

my $info;
my $secs = poll_until(sub { $info = autoha_node($f); $info && ($info->{last_error} // '') =~ /system identifier/i },
	30, 'last_error to mention the system identifier');
ok(defined $secs, 'autoha_node().last_error on foreign mentions the system identifier')
  or diag('autoha_node(): ' . JSON::PP->new->canonical->encode($info // {}));
note(sprintf("refused after %.2f s: %s", $secs // -1, $info->{last_error} // '')) if $info;

# let it run a few more loops, then look at what it did
Time::HiRes::sleep(4 * $AutohaTest::LOOP_WAIT / 1000.0);

my $after = etcd_get_prefix($etcd, ckey($cluster) . '/');
ok(!exists $after->{ ckey($cluster, 'members', 'foreign') }, 'no members/foreign key');
my $cprefix = ckey($cluster) . '/';
is_deeply([ grep { substr($_, length $cprefix) =~ /foreign/ || $after->{$_} =~ /\bforeign\b/ } sort keys %$after ],
	[], 'no key of the cluster names foreign, in its name or its value');
is($after->{ ckey($cluster, 'leader') }, 'node1', 'leader key unchanged');
is($after->{ ckey($cluster, 'initialize') }, $before->{ ckey($cluster, 'initialize') }, 'initialize unchanged');
is_deeply([ sort grep { !m{/(status|members/node1)$} } keys %$after ],
	[ sort grep { !m{/(status|members/node1)$} } keys %$before ],
	'no key added or removed (besides node1\'s own updates)');

is(in_recovery($f), 0, 'foreign is still a primary, not in recovery');
ok(!-e $f->data_dir . '/standby.signal', 'no standby.signal written on foreign');
is(slurp_file($f->data_dir . '/postgresql.auto.conf'), $auto_before, 'postgresql.auto.conf of foreign untouched');
is(sql_ok($f, 'SELECT count(*) FROM pg_replication_slots'), '0', 'no slot created on foreign');
$info = autoha_node($f);
ok($info && !$info->{is_leader}, 'foreign is not leader');
isnt($info && $info->{leader} // '', 'foreign', 'foreign does not see itself as leader');
like(slurp_file($f->logfile, $log_offset), qr/system identifier/i, 'server log of foreign explains the refusal');

# node1 is unaffected
my $st = autoha_status($n1);
is_deeply([ map { $_->{name} } @{ $st || [] } ], ['node1'], 'node1 sees only itself');
my $i1 = autoha_node($n1);
ok($i1 && $i1->{is_leader}, 'node1 still leader');
sql_ok($n1, 'CREATE TABLE t050 AS SELECT 1 AS x');
pass('node1 still accepts writes');

done_testing();
