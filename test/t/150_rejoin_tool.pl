
# 150_rejoin_tool: pg_autoha_rejoin brings a diverged old primary back as a
# standby of the new leader.
#
# node1 leads, node2 streams.  node1 diverges: the walsender serving node2 is
# stopped (SIGSTOP), so rows node1 acknowledges never leave it; then node1's
# postmaster and that walsender are killed with SIGKILL and node2 takes over
# on a new timeline.  (Stopping node2's walreceiver instead is not enough:
# the walsender keeps filling node2's socket buffer, and those rows would
# reach node2 once the walreceiver runs again.)
#
#  - on the stopped node1: --dry-run changes nothing; a real run rewinds it
#    (exit 0, "rewound"), keeps node1's own postgresql.conf (its port), and
#    node1 then starts as a standby streaming from node2 on node2's timeline
#    through its slot, without the divergent rows, receiving new writes, with
#    exactly the primary_conninfo the worker would write (so the worker
#    leaves it alone);
#  - on a running node1 without --restart: exit 2, saying to stop it first
#    or use --restart;
#  - nothing to do: --restart on the leader leaves it running; a data
#    directory with etcd unreachable, or of another system (exit 2), is not
#    touched;
#  - roles swapped: node2 diverges the same way, node1 takes over; with the
#    cluster paused (so that node2's worker leaves it alone rather than run
#    pg_autoha_rejoin --restart itself) node2 is started again as it was, a
#    fenced primary, and --restart stops, rewinds and restarts it as a
#    standby of node1, with the same options and log file.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $bindir = `pg_config --bindir`;
chomp $bindir;
my $tool = "$bindir/pg_autoha_rejoin";
plan skip_all => "$tool is not installed (make install)" unless -x $tool;

my $t_start = now_s();
my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(etcd => $etcd, n => 2, cluster_name => $cluster);
my ($n1, $n2) = @$nodes;

my ($leader) = wait_for_leader($nodes, 30);
ok($leader, 'a leader') or BAIL_OUT('no leader');
is($leader->name, 'node1', 'node1 leads');

sql_ok($n1, "CREATE TABLE t150 (id int PRIMARY KEY, src text)");
sql_ok($n1, "INSERT INTO t150 SELECT g, 'before' FROM generate_series(1, 100) g");
$n1->wait_for_catchup($n2);

# Run the tool; returns (exit status, stdout and stderr together).
sub rejoin
{
	my @args = @_;
	my $out = '';
	my $t0 = now_s();
	IPC::Run::run([ $tool, @args ], '<', \undef, '>&', \$out,
		IPC::Run::timeout(240));
	my $rc = $? >> 8;
	note(sprintf("pg_autoha_rejoin %s -> exit %d after %.2f s:\n%s",
			join(' ', @args), $rc, now_s() - $t0, $out));
	return ($rc, $out);
}

# Drop $name's slot on $leader if it has one: after a failover it depends on
# timing whether the new leader created it before promoting, and the tool
# must make sure it exists (a rewound standby cannot become consistent, and
# so its worker cannot ask for the slot, without streaming through it).
sub drop_slot
{
	my ($leader, $name) = @_;
	sql_ok($leader, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '$name'");
	return;
}

sub has_slot
{
	my ($leader, $name) = @_;
	return sql_ok($leader, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$name'") eq '1';
}

# The timeline a primary writes on.
sub wal_timeline
{
	my ($node) = @_;
	return hex(sql_ok($node, 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'));
}

# Make $primary diverge from $standby: rows $primary acknowledges that
# $standby never receives, then kill -9 of $primary.  Returns nothing.
sub diverge
{
	my ($primary, $standby, $tag, $first) = @_;
	my $ws = sql_ok($primary,
		"SELECT pid FROM pg_stat_replication WHERE application_name = '" . $standby->name . "'");
	ok($ws =~ /^\d+$/, "walsender on " . $primary->name . " for " . $standby->name . ": $ws");
	kill 'STOP', $ws;
	sql_ok($primary, "INSERT INTO t150 SELECT g, '$tag' FROM generate_series($first, $first + 99) g");
	is(sql_ok($primary, "SELECT count(*) FROM t150 WHERE src = '$tag'"), '100',
		$primary->name . " acknowledged 100 '$tag' rows");
	my $pm = $primary->{_pid};
	AutohaTest::kill9_node($primary);
	# PostgreSQL refuses to start while the dead postmaster's PID exists,
	# even as a zombie: let its parent reap it (init here, within seconds)
	ok(defined poll_until(sub { !kill(0, $pm) }, 30, "postmaster $pm to be reaped", 0.1),
		"the killed postmaster $pm was reaped");
	# a stopped process does not notice its postmaster's death: kill it too
	kill 'KILL', $ws;
	ok(defined AutohaTest::wait_pids_gone([$ws], 10), "the stopped walsender $ws is gone");
	return;
}

# Checks of a node that rejoined $new_leader after losing rows $tag.
sub check_rejoined
{
	my ($node, $new_leader, $tag, $log_offset, $row_id) = @_;
	my $name = $node->name;

	is(in_recovery($node), 1, "$name is in recovery");
	ok(defined wait_streaming($new_leader, [$node], 60),
		"$name streams from " . $new_leader->name . " through its slot");
	is(sql_ok($node, "SELECT count(*) FROM t150 WHERE src = '$tag'"), '0',
		"the divergent '$tag' rows are gone from $name");
	is(sql_ok($node, "SELECT count(*) FROM t150 WHERE src = 'before'"), '100',
		"$name has the rows from before");
	sql_ok($new_leader, "INSERT INTO t150 VALUES ($row_id, 'after')");
	ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM t150 WHERE id = $row_id"),
		"a row written on " . $new_leader->name . " afterwards reaches $name");
	is(sql_ok($node, 'SELECT received_tli FROM pg_stat_wal_receiver'),
		wal_timeline($new_leader), "$name receives " . $new_leader->name . "'s timeline");

	my $want = sprintf("host='127.0.0.1' port='%d' application_name='%s' user=%s",
		$new_leader->port, $name, (getpwuid($<))[0]);
	is(sql_ok($node, 'SHOW primary_conninfo'), $want,
		"$name: primary_conninfo is what the worker writes");
	is(sql_ok($node, 'SHOW primary_slot_name'), $name, "$name: primary_slot_name");
	# from the start of the server this tool started
	my $log = slurp_file($node->logfile, $log_offset);
	$log =~ s/\A.*(?=starting PostgreSQL)//s;
	unlike($log, qr/pg_autoha: now following leader/,
		"$name: its worker found primary_conninfo already right and left it alone");
	return;
}

# ---------------------------------------------------------------- node1 diverges
my $t_fault = now_s();
diverge($n1, $n2, 'diverged1', 1001);
my ($new) = wait_for_leader([$n2], 30);
ok($new, 'node2 took over') or BAIL_OUT("no failover; etcd:\n" . etcd_dump($etcd, $cluster));
note(sprintf('node2 leads %.2f s after the kill', now_s() - $t_fault));
is(sql_ok($n2, "SELECT count(*) FROM t150 WHERE src = 'diverged1'"), '0',
	'node2 never received the diverged1 rows: node1 diverged');
my $tli2 = wal_timeline($n2);
cmp_ok($tli2, '>', 1, "node2 writes on timeline $tli2");

# ---------------------------------------------------------------- dry run
drop_slot($n2, 'node1');
my $d1 = $n1->data_dir;
my $auto_before = slurp_file("$d1/postgresql.auto.conf");
my $control_before = slurp_file("$d1/global/pg_control");
my ($rc, $out) = rejoin('-D', $d1, '--dry-run');
is($rc, 0, '--dry-run exits 0');
like($out, qr/would run pg_rewind from "node2"/, '--dry-run says it would rewind from node2');
like($out, qr/dry run: nothing changed/, '--dry-run says nothing changed');
ok(!has_slot($n2, 'node1'), '--dry-run created no slot on the leader');
ok(!-e "$d1/standby.signal", '--dry-run created no standby.signal');
is(slurp_file("$d1/postgresql.auto.conf"), $auto_before, '--dry-run left postgresql.auto.conf alone');
ok(slurp_file("$d1/global/pg_control") eq $control_before, '--dry-run left pg_control alone');

# ---------------------------------------------------------------- the real run
($rc, $out) = rejoin('-D', $d1);
is($rc, 0, 'pg_autoha_rejoin on the stopped node1 exits 0');
like($out, qr/pg_autoha_rejoin: rewound and made a standby of "node2"$/m,
	'it says it rewound node1 and made it a standby of node2');
like($out, qr/\[pg_rewind\] .*servers diverged at WAL location/, 'pg_rewind found the divergence');
my $port1 = $n1->port;
like(slurp_file("$d1/postgresql.conf"), qr/^port = $port1$/m,
	"node1's postgresql.conf still has its own port $port1");
ok(-e "$d1/standby.signal", 'standby.signal created');
like($out, qr/created replication slot "node1" on the leader "node2"/, 'it created slot node1 on node2');
ok(has_slot($n2, 'node1'), 'slot node1 exists on node2');

my $log1 = -s $n1->logfile;
$n1->start;
check_rejoined($n1, $n2, 'diverged1', $log1, 200001);

# ---------------------------------------------------------------- running server
($rc, $out) = rejoin('-D', $d1);
is($rc, 2, 'on a running server without --restart: exit 2');
like($out, qr/error: the server in ".*" is running \(PID \d+\)/, 'it says the server is running');
like($out, qr/hint: .*stop it first.*--restart/, 'and to stop it first or use --restart');

# ---------------------------------------------------------------- roles swapped, --restart
$n2->wait_for_catchup($n1);
$t_fault = now_s();
diverge($n2, $n1, 'diverged2', 2001);
($new) = wait_for_leader([$n1], 30);
ok($new, 'node1 took over') or BAIL_OUT("no failover; etcd:\n" . etcd_dump($etcd, $cluster));
note(sprintf('node1 leads %.2f s after the kill', now_s() - $t_fault));
is(sql_ok($n1, "SELECT count(*) FROM t150 WHERE src = 'diverged2'"), '0',
	'node1 never received the diverged2 rows: node2 diverged');

# Maintenance mode (Patroni's "pause" in the config key): the worker leaves
# a diverged server as it is (unpaused, it would demote it and run
# pg_autoha_rejoin --restart itself), so here the operator does.
my $config_key = ckey($cluster, 'config');
my ($put_ok, undef, $put_err) = AutohaTest::etcdctl($etcd, 10, 'put', $config_key, '{"pause": true}');
ok($put_ok, 'cluster paused') or diag($put_err);

# node2 comes back as it was: a fenced primary with the divergent rows
my $d2 = $n2->data_dir;
$n2->start;
is(in_recovery($n2), 0, 'node2 restarted as it was: a primary');
is(sql_ok($n2, "SELECT count(*) FROM t150 WHERE src = 'diverged2'"), '100',
	'node2 has its divergent rows');
my $pid_before = $n2->{_pid};

drop_slot($n1, 'node2');
my $log2 = -s $n2->logfile;
($rc, $out) = rejoin('-D', $d2, '--restart');
is($rc, 0, 'pg_autoha_rejoin --restart on the running node2 exits 0');
like($out, qr/pg_autoha_rejoin: rewound and made a standby of "node1"; server restarted$/m,
	'it says it rewound node2, made it a standby of node1 and restarted it');
like($out, qr/stopping the server \(PID $pid_before\); it will be started again with log file \Q${\$n2->logfile}\E/,
	'it stopped the server and kept its log file');
$n2->_update_pid(1);
ok(has_slot($n1, 'node2'), 'slot node2 exists on node1');
($put_ok, undef, $put_err) = AutohaTest::etcdctl($etcd, 10, 'del', $config_key);
ok($put_ok, 'cluster resumed') or diag($put_err);
isnt($n2->{_pid}, $pid_before, 'node2 runs under a new postmaster');
my $port2 = $n2->port;
like(slurp_file("$d2/postgresql.conf"), qr/^port = $port2$/m,
	"node2's postgresql.conf still has its own port $port2");
check_rejoined($n2, $n1, 'diverged2', $log2, 200002);

# ---------------------------------------------------------------- nothing to do
# --restart on the leader itself leaves it running as it is
my $pid1 = $n1->{_pid};
($rc, $out) = rejoin('-D', $d1, '--restart');
is($rc, 0, '--restart on the leader: exit 0');
like($out, qr/nothing to do: this server \("node1"\) is the leader/, 'it says node1 is the leader');
$n1->_update_pid(1);
is($n1->{_pid}, $pid1, 'the leader was left running (same postmaster)');

# A data directory of another system, never started, with this cluster's
# settings: with etcd unreachable nothing is done; with etcd, the system
# identifier does not match the cluster's and nothing is done either.
my $foreign = PostgreSQL::Test::Cluster->new('foreign');
$foreign->init;
my $dead_port = PostgreSQL::Test::Cluster::get_free_port();
$foreign->append_conf('postgresql.conf', <<"EOC");
autoha.etcd_endpoints = 'http://127.0.0.1:$dead_port'
autoha.cluster_name = '$cluster'
autoha.node_name = 'node9'
EOC
($rc, $out) = rejoin('-D', $foreign->data_dir);
is($rc, 0, 'etcd unreachable: exit 0');
like($out, qr/nothing to do: without etcd the leader is unknown/, 'it says etcd could not be read');
$foreign->append_conf('postgresql.conf', "autoha.etcd_endpoints = '" . $etcd->endpoint . "'\n");
($rc, $out) = rejoin('-D', $foreign->data_dir);
is($rc, 2, 'a data directory of another system: exit 2');
like($out, qr/error: this server's system identifier is \d+, but cluster "$cluster" in etcd was initialized by system \d+/,
	'it names both system identifiers');
ok(!-e $foreign->data_dir . '/standby.signal', 'and changed nothing');

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
note(sprintf('test took %.1f s', now_s() - $t_start));

done_testing();
