
# 210_sync_manual_failover: the DBA's override in synchronous mode.
#
# Two servers, autoha.synchronous_mode = on.  node2 dies: node1 drops it from
# the sync key and acknowledges writes on its own.  node1 dies too and node2
# comes back: it is not in the synchronous set, so it is not promoted
# automatically (it may lack what node1 acknowledged alone).  The DBA
# promotes it anyway with autoha_failover('node2'): the call warns that
# writes node1 acknowledged may be lost, and node2 leads.  node1, started
# again, rejoins as node2's replica (rewound); the writes it acknowledged
# alone are gone -- exactly the loss the warning named -- and every write
# acknowledged while node2 was synchronous is there.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(
	etcd         => $etcd,
	n            => 2,
	cluster_name => $cluster,
	conf         => { 'autoha.synchronous_mode' => 'on' });
my ($n1, $n2) = @$nodes;
my %acked;

sub dump_state { my ($what) = @_; return dump_sync_state($etcd, $cluster, $nodes, $what); }

ok(defined poll_until(sub { (sync_list(sync_key($etcd, $cluster)) // '') eq 'node2' }, 30, 'node2 in the sync key'),
	'the sync key lists node2')
  or dump_state('no sync standby');
sql_ok($n1, 'CREATE TABLE t210 (id int PRIMARY KEY, src text)');
write_rows($n1, 't210', \%acked, 1, 100, 'synchronous');

# node2 dies: node1 goes on alone once the key no longer lists node2
my @kids2 = AutohaTest::kill9_node($n2);
ok(defined AutohaTest::wait_pids_gone(\@kids2, 30), "node2's processes exited");
ok(defined poll_until(sub { ssn($n1) eq '' && (sync_list(sync_key($etcd, $cluster)) // 'x') eq '' }, 30,
		'node1 asynchronous'),
	'node1 dropped node2 from the key and from synchronous_standby_names')
  or dump_state('still synchronous');
write_rows($n1, 't210', \%acked, 101, 150, 'node1 alone');
is(scalar(grep { $acked{$_} eq 'node1 alone' } keys %acked), 50, 'node1 acknowledged 50 writes alone');

# node1 dies, node2 comes back: not promoted automatically
my @kids1 = AutohaTest::kill9_node($n1);
ok(defined restart_killed_node($n2, \@kids2), 'node2 starts again');
my $why;
ok(defined poll_until(
		sub {
			my $i = autoha_node($n2) or return 0;
			$why = $i->{decision_reason} // '';
			return $why =~ /not in the synchronous set/;
		},
		30, 'node2 to say why it waits'),
	'node2 waits: "not in the synchronous set"')
  or diag("node2's reason: " . ($why // 'none'));
is(etcd_get($etcd, ckey($cluster, 'leader')), undef, 'nobody holds the leader key');
is(in_recovery($n2), 1, 'node2 is still a replica');

# the DBA's call: promote node2, knowing what it may lack
my ($res, $err) = sql($n2, "SELECT autoha_failover('node2')", timeout => 90);
is($res, 'node2', "autoha_failover('node2') returns node2");
like($err, qr/WARNING:  member "node2" is not in the synchronous set of cluster "\Q$cluster\E"; writes that leader "node1" acknowledged may be lost/,
	'it warns that writes node1 acknowledged may be lost');
like($err, qr/HINT:  To lose nothing, bring back the last leader or a standby the sync key lists\./,
	'and says how to lose nothing');
my ($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node2', 'node2 leads');
my $k = sync_key($etcd, $cluster);
is($k && $k->{leader}, 'node2', 'the sync key names node2 as its leader');
ok(defined sql($n2, "INSERT INTO t210 VALUES (1000, 'after the failover')"), 'node2 accepts a write');

# node1 comes back as node2's replica (its lone writes diverged: rewound)
ok(defined restart_killed_node($n1, \@kids1), 'node1 starts again');
# (wait_following, not wait_streaming: before its rewind node1 streams its
# old timeline for a moment)
ok(defined wait_following($n2, [$n1], 120), 'node1 streams from node2')
  or dump_state('node1 did not rejoin');
$n1->_update_pid(1);	# pg_autoha_rejoin restarted it
is(in_recovery($n1), 1, 'node1 is a replica');
is(sql($n2, "SELECT count(*) FROM t210 WHERE src = 'synchronous'"), '100',
	'every write acknowledged while node2 was synchronous is on node2');
is(sql($n2, "SELECT count(*) FROM t210 WHERE src = 'node1 alone'"), '0',
	'the writes node1 acknowledged alone are gone: the loss the warning named');
ok(defined poll_until(sub { (sql($n1, "SELECT count(*) FROM t210 WHERE id = 1000") // '') eq '1' }, 30,
		'node1 to replay node2\'s write'),
	'node1 has the write made after the failover');

done_testing();
