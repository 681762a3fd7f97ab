
# 020_failover_kill9: kill -9 the leader's postmaster; one replica takes the
# leader key and accepts writes, the other follows it on the new timeline
# without a restart, and nothing replicated before the kill is lost.  A
# backend of the killed postmaster that was busy at the kill (its walsenders
# are gone, so nothing it commits could reach a replica) cannot commit: the
# worker raises the fence when it sees the postmaster die, and the commit
# check itself refuses once the postmaster is gone, even before that.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;

my ($old) = wait_for_leader($nodes, 30);
ok($old, 'a leader before the fault') or BAIL_OUT('no leader');
is($old->name, 'node1', 'node1 leads');
my @survivors = grep { $_ != $old } @$nodes;

sql_ok($old, "CREATE TABLE t020 (id int PRIMARY KEY, src text DEFAULT 'x')");
sql_ok($old, "INSERT INTO t020 (id, src) SELECT g, 'before' FROM generate_series(1, 1000) g");
$old->wait_for_catchup($_) for @survivors;
my $startup_sql = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'";
my %startup_before = map { $_->name => sql_ok($_, $startup_sql) } @survivors;

# A transaction that wrote, then keeps its backend busy (no latch wait, so
# the backend does not notice the postmaster's death on its own) and commits
# only after the kill.
my ($busy_out, $busy_err) = ('', '');
my $busy = IPC::Run::start(
	[
		'psql', '-X', '-h', $old->host, '-p', $old->port, '-d', 'postgres', '-c',
		"INSERT INTO t020 (id, src) VALUES (-1, 'busy at the kill'); "
		  . 'SELECT count(*) FROM generate_series(1, 15000000)'
	],
	'>', \$busy_out, '2>', \$busy_err, IPC::Run::timeout(180));
ok(defined poll_until(
		sub {
			(sql($old, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
				  . "AND query LIKE 'INSERT INTO t020 (id, src) VALUES (-1%'") // '') eq '1';
		},
		30, 'the busy transaction to run', 0.05),
	'a transaction that wrote is busy on the leader');

# ---- the fault
note('killing the postmaster of ' . $old->name . " (pid $old->{_pid}) with SIGKILL");
my @kids = AutohaTest::kill9_node($old);
my $t_kill = now_s();

# ---- time to the first accepted write on a survivor
my ($writer, $write_secs) = first_write(\@survivors, 't020', 60);
ok(defined $write_secs, 'a survivor accepted a write after the kill')
  or diag("etcd:\n" . etcd_dump($etcd, $cluster));
note(sprintf("FAILOVER kill9: first write accepted by %s %.2f s after kill -9",
		$writer ? $writer->name : '-', $write_secs // -1));
BAIL_OUT('no failover') unless $writer;

# The children of the dead postmaster (worker included) noticed its death.
my $gone = AutohaTest::wait_pids_gone(\@kids, 30);
ok(defined $gone, 'every child of the killed postmaster exited');
note(sprintf("children of the killed postmaster gone after %.2f s", $gone)) if defined $gone;

# the busy backend outlived its postmaster; its commit was refused
$busy->finish;
isnt($busy->result, 0, 'the busy transaction did not commit');
like($busy_err, qr/pg_autoha: cannot commit a transaction that wrote.*\n.*its postmaster has died/,
	'its commit was refused because the postmaster had died');
unlike($busy_out, qr/^\s*15000000\s*$/m, 'no success reached the client');
note("busy session: $busy_err");

# ---- exactly one new leader, which the other survivor follows
my ($new, $lead_secs) = wait_for_leader(\@survivors, 60);
ok($new, 'one new leader');
is($new && $new->name, $writer->name, 'the server that accepted the write is the leader');
my ($other) = grep { $_ != $writer } @survivors;

ok(defined poll_until(sub { (etcd_get($etcd, ckey($cluster, 'leader')) // '') eq $writer->name },
		30, 'leader key to name the new leader'),
	'leader key names the new leader');
is(in_recovery($other), 1, $other->name . ' is still a replica');

ok(defined poll_until(sub { my $i = autoha_node($other); $i && ($i->{leader} // '') eq $writer->name },
		30, $other->name . ' to see the new leader'),
	$other->name . ': autoha_node() names the new leader');
ok(defined poll_until(
		sub {
			my $st = autoha_status($other) or return 0;
			my @l = grep { $_->{is_leader} } @$st;
			return @l == 1 && $l[0]{name} eq $writer->name;
		},
		30, $other->name . ' autoha_status() to show the new leader'),
	$other->name . ': autoha_status() shows exactly the new leader');

my $follow_secs = wait_streaming($writer, [$other], 60);
ok(defined $follow_secs, $other->name . ' streams from the new leader');
note(sprintf("%s streaming from %s %.2f s after the failover",
		$other->name, $writer->name, now_s() - $t_kill));
is(sql($writer, "SELECT slot_name, active FROM pg_replication_slots WHERE slot_name = '" . $other->name . "'"),
	$other->name . '|t', 'through its slot on the new leader');
is(sql($other, 'SELECT received_tli FROM pg_stat_wal_receiver'), '2',
	$other->name . ' follows timeline 2');
is(sql($other, $startup_sql), $startup_before{ $other->name },
	$other->name . ' followed without a restart (same startup process)');

# ---- data
is(sql_ok($writer, "SELECT count(*) FROM t020 WHERE src = 'before'"), '1000',
	'rows replicated before the kill are on the new leader');
sql_ok($writer, "INSERT INTO t020 (id, src) VALUES (200000, 'after')");
ok($other->poll_query_until('postgres', "SELECT count(*) = 1 FROM t020 WHERE id = 200000"),
	'a row written on the new leader reaches ' . $other->name);
is(sql_ok($other, "SELECT count(*) FROM t020 WHERE src = 'before'"), '1000',
	$other->name . ' has the rows from before the kill');

is(find_leader(\@survivors) && find_leader(\@survivors)->name, $writer->name, 'still one leader');
is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');

done_testing();
