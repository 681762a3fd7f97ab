
# 010_bootstrap: a 3-server cluster comes up with one leader, the Patroni key
# layout in etcd, replicas streaming through slots over TCP, and status
# functions readable by pg_monitor only.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $t0      = now_s();
my $nodes   = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
note(sprintf("bootstrap of 3 servers took %.1f s", now_s() - $t0));
my ($n1, $n2, $n3) = @$nodes;
my @replicas = ($n2, $n3);
my @names    = map { $_->name } @$nodes;

# ---- etcd keys
my $kv = etcd_get_prefix($etcd, ckey($cluster) . '/');
note("etcd keys of $cluster:\n" . join('', map { "  $_ = $kv->{$_}\n" } sort keys %$kv));

my @leader_keys = grep { m{/leader$} } keys %$kv;
is(scalar(@leader_keys), 1, 'exactly one leader key');
is($kv->{ ckey($cluster, 'leader') }, 'node1', 'leader key names the primary');

my $sysid = sql_ok($n1, 'SELECT system_identifier FROM pg_control_system()');
is($kv->{ ckey($cluster, 'initialize') }, $sysid,
	'initialize key holds the primary\'s system identifier');

my $json = JSON::PP->new;
foreach my $node (@$nodes)
{
	my $name = $node->name;
	my $raw  = $kv->{ ckey($cluster, 'members', $name) };
	ok(defined $raw, "members/$name exists");
	my $m = eval { $json->decode($raw // '') };
	ok($m && ref $m eq 'HASH', "members/$name is a JSON object")
	  or diag("members/$name: " . ($raw // 'undef') . " $@");
	$m ||= {};
	is($m->{role}, $name eq 'node1' ? 'primary' : 'replica', "members/$name role");
	my $port = $node->port;
	like($m->{conn_url} // '', qr/127\.0\.0\.1:$port\b/,
		"members/$name conn_url has its connect_address");
	ok(defined $m->{state} && $m->{state} ne '', "members/$name has a state");
	is($m->{timeline}, 1, "members/$name timeline 1");
	like($m->{xlog_location} // '', qr/^\d+$/, "members/$name xlog_location is a number");
}
my @extra = grep { m{/members/} && !m{/members/(node1|node2|node3)$} } keys %$kv;
is_deeply(\@extra, [], 'no other members');

# ---- autoha_status() / autoha_node() on every server
foreach my $node (@$nodes)
{
	my $name = $node->name;
	my $st   = autoha_status($node);
	ok($st, "autoha_status() answers on $name") or next;
	is_deeply([ map { $_->{name} } @$st ], \@names, "$name sees the 3 members");
	my @lead = grep { $_->{is_leader} } @$st;
	is(scalar(@lead), 1, "$name: exactly one is_leader row");
	is($lead[0]{name}, 'node1', "$name: node1 is the leader") if @lead;
	foreach my $row (@$st)
	{
		is($row->{role}, $row->{name} eq 'node1' ? 'leader' : 'replica',
			"$name: role of $row->{name}");
	}
	my ($self) = grep { $_->{name} eq $name } @$st;
	is($self->{port}, $node->port, "$name: own row has its port") if $self;
	ok(!$st->[0]{view_stale}, "$name: view not stale");

	my $info = autoha_node($node);
	ok($info, "autoha_node() answers on $name") or next;
	is($info->{node_name},    $name,    "$name: node_name");
	is($info->{cluster_name}, $cluster, "$name: cluster_name");
	is($info->{leader},       'node1',  "$name: sees node1 as leader");
	is($info->{is_leader} ? 1 : 0, $name eq 'node1' ? 1 : 0, "$name: is_leader");
	is($info->{in_recovery} ? 1 : 0, $name eq 'node1' ? 0 : 1, "$name: in_recovery");
	ok(!defined $info->{last_error} || $info->{last_error} eq '',
		"$name: no last_error") or diag("last_error: $info->{last_error}");
	ok(($info->{worker_pid} // 0) > 0, "$name: worker_pid set");
	is(sql($node, "SELECT count(*) FROM pg_stat_activity WHERE pid = $info->{worker_pid}"),
		'1', "$name: worker_pid is a live process of this server")
	  if ($info->{worker_pid} // 0) > 0;
}

# ---- replication: over TCP, with application_name and slots
my $rep = sql_ok($n1,
	"SELECT application_name, state, coalesce(host(client_addr), 'local') FROM pg_stat_replication ORDER BY 1");
is($rep, "node2|streaming|127.0.0.1\nnode3|streaming|127.0.0.1",
	'both replicas stream from node1 over TCP with their names');

my $slots = sql_ok($n1,
	"SELECT slot_name, slot_type, active FROM pg_replication_slots ORDER BY 1");
is($slots, "node2|physical|t\nnode3|physical|t", 'node1 has an active physical slot per replica');
is(sql_ok($n1,
	"SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid AND r.application_name = s.slot_name"),
	'2', 'each slot is used by the walsender of its replica');

my $n1port = $n1->port;
foreach my $r (@replicas)
{
	my $name = $r->name;
	my $ci   = sql_ok($r, 'SHOW primary_conninfo');
	like($ci, qr/\bhost='?127\.0\.0\.1'?/, "$name: primary_conninfo host from connect_address");
	like($ci, qr/\bport='?$n1port'?/, "$name: primary_conninfo port of node1");
	like($ci, qr/\bapplication_name='?$name'?/, "$name: application_name is the node name");
	is(sql_ok($r, 'SHOW primary_slot_name'), $name, "$name: primary_slot_name");
	is(sql_ok($r, "SELECT status FROM pg_stat_wal_receiver"), 'streaming', "$name: wal receiver streaming");
}

# ---- data flows
sql_ok($n1, "CREATE TABLE t010 (id int PRIMARY KEY, v text); INSERT INTO t010 SELECT g, 'row ' || g FROM generate_series(1, 100) g");
foreach my $r (@replicas)
{
	ok($r->poll_query_until('postgres', "SELECT count(*) = 100 FROM t010"),
		$r->name . ' received the rows');
}

# ---- privileges: pg_monitor may read status, PUBLIC may not
sql_ok($n1, "CREATE ROLE autoha_mon LOGIN; GRANT pg_monitor TO autoha_mon; CREATE ROLE autoha_nobody LOGIN;");
$n1->wait_for_catchup($_) for @replicas;
foreach my $node ($n1, $n2)
{
	my $name = $node->name;
	foreach my $f ('autoha_status()', 'autoha_node()')
	{
		my ($out, $err) = sql($node, "SELECT count(*) > 0 FROM $f",
			extra_params => [ '-U', 'autoha_mon' ]);
		is($out, 't', "$name: pg_monitor member can call $f") or diag($err);
		($out, $err) = sql($node, "SELECT count(*) FROM $f",
			extra_params => [ '-U', 'autoha_nobody' ]);
		ok(!defined $out && $err =~ /permission denied for function autoha_/,
			"$name: PUBLIC cannot call $f") or diag("out: " . ($out // 'undef') . " err: $err");
	}
}

# ---- Patroni's own tool reads the cluster (Patroni's etcd3 layout)
SKIP:
{
	skip 'patronictl is not installed', 4 unless grep { -x "$_/patronictl" } split /:/, $ENV{PATH};
	my $cfg = "$PostgreSQL::Test::Utils::tmp_check/patronictl_010.yml";
	open(my $fh, '>', $cfg) or die "cannot write $cfg: $!";
	printf $fh "scope: %s\nnamespace: %s\netcd3:\n  hosts: 127.0.0.1:%d\n",
	  $cluster, $AutohaTest::NAMESPACE, $etcd->{client_port};
	close $fh;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'patronictl', '-c', $cfg, 'list', '-f', 'json' ], '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	ok($ok, 'patronictl list ran') or diag($err);
	my $rows = eval { JSON::PP->new->decode($out) } // [];
	is(scalar(@$rows), 3, 'patronictl list shows the 3 members') or diag($out);
	my ($lrow) = grep { ($_->{Role} // '') eq 'Leader' } @$rows;
	is($lrow && $lrow->{Member}, 'node1', 'patronictl list names node1 as the Leader');
	is(scalar(grep { ($_->{Role} // '') eq 'Replica' && ($_->{State} // '') eq 'running' } @$rows), 2,
		'patronictl list shows two running replicas');
}

# The cluster is still healthy after all that.
is(etcd_get($etcd, ckey($cluster, 'leader')), 'node1', 'node1 still leader at the end');
is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');

done_testing();
