
# 170_rejoin_impossible: an old primary that diverged and cannot be rewound
# (neither wal_log_hints nor data checksums) never accepts a write and says
# why.
#
#  - node1 runs with wal_log_hints = off; it acknowledges writes its replicas
#    never receive (its WAL senders are stopped), is killed with kill -9, and
#    node2 or node3 takes over;
#  - node1 is started again: it demotes itself (crash restart into standby
#    mode), finds its WAL diverged, and stays a fenced replica: its worker
#    does not start pg_autoha_rejoin, and autoha_node() and the log say that
#    pg_rewind needs wal_log_hints = on or data checksums, and what to do;
#  - no write is acknowledged by node1 at any point, and the leader is
#    unchanged.

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
my $nodes   = make_cluster(
	etcd         => $etcd,
	n            => 3,
	cluster_name => $cluster,
	node_conf    => { node1 => { wal_log_hints => 'off' } });
my ($n1, $n2, $n3) = @$nodes;
my ($old) = wait_for_leader($nodes, 30);
is($old && $old->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
is(sql($n1, 'SHOW wal_log_hints'), 'off', 'node1 runs without wal_log_hints');
is(sql($n1, 'SHOW data_checksums'), 'off', 'and without data checksums');

sql_ok($n1, "CREATE TABLE t170 (id int PRIMARY KEY, src text)");
sql_ok($n1, "INSERT INTO t170 SELECT g, 'before' FROM generate_series(1, 100) g");
$n1->wait_for_catchup($_) for ($n2, $n3);

my @senders = split /\n/, sql_ok($n1, "SELECT pid FROM pg_stat_replication WHERE application_name IN ('node2', 'node3')");
is(scalar(grep { /^\d+$/ } @senders), 2, 'node1 has a WAL sender for each replica');
kill 'STOP', @senders;
sql_ok($n1, "INSERT INTO t170 VALUES (1000 + $_, 'divergent')") for 1 .. 20;
my @kids = AutohaTest::kill9_node($n1);
kill 'KILL', @senders;
my ($new) = wait_for_leader([ $n2, $n3 ], 60);
ok($new, 'a replica takes over') or BAIL_OUT('no failover');

my $log_offset = -s $n1->logfile;
ok(defined restart_killed_node($n1, \@kids), 'node1 starts again');

# It demotes itself, then must stay a fenced replica that says why.
my @acked;
my $id = 100000;
my $info;
my $said = poll_until(
	sub {
		my $r = sql($n1, "INSERT INTO t170 VALUES ($id, 'returning') RETURNING id", timeout => 2);
		push @acked, $id if defined $r && $r eq $id;
		$id++;
		$info = autoha_node($n1);
		return $info && ($info->{last_error} // '') =~ /wal_log_hints/;
	},
	60, 'node1 to say it cannot be rewound', 0.1);
ok(defined $said, 'node1 says it cannot be rewound');
note('node1 autoha_node(): decision ' . ($info->{decision} // 'NULL') . ': ' . ($info->{decision_reason} // 'NULL')
	  . '; last_error: ' . ($info->{last_error} // 'NULL'));
like($info->{last_error} // '', qr/pg_rewind needs wal_log_hints = on or data checksums/, 'last_error names what pg_rewind needs');
like($info->{last_error} // '', qr/set wal_log_hints = on and restart it \(or re-clone it with pg_basebackup\)/,
	'and what to do');
is($info->{decision}, 'rewind', 'its decision is to rewind');
like($info->{decision_reason} // '', qr/went past [0-9A-F]+\/[0-9A-F]+, where leader "\Q${\ $new->name}\E"'s timeline forked off timeline 1/,
	'decision_reason: its WAL went past the fork point');

# and it stays that way: a replica, fenced, not rewound, writing nothing
my ($ok2, @more) = (poll_until(
		sub {
			my $r = sql($n1, "INSERT INTO t170 VALUES ($id, 'returning') RETURNING id", timeout => 2);
			push @acked, $id if defined $r && $r eq $id;
			$id++;
			return 0;
		},
		5, 'five more seconds of write attempts', 0.1));
is(in_recovery($n1), 1, 'node1 is a replica (standby mode)');
ok(autoha_node($n1)->{fenced}, 'node1 is fenced');
is_deeply(\@acked, [], 'node1 acknowledged no write');
is(sql($n1, "SELECT count(*) FROM t170 WHERE src = 'divergent'"), '20', 'node1 still has its divergent rows (not rewound)');
my $log = slurp_file($n1->logfile, $log_offset);
like($log, qr/pg_autoha: demote: member "\Q${\ $new->name}\E" holds the leader key/, 'node1 log: it demoted itself');
like($log, qr/WARNING:  pg_autoha: this server's WAL diverged from the leader's and pg_rewind needs wal_log_hints = on or data checksums/,
	'node1 log: the WARNING says why it cannot rejoin');
unlike($log, qr/started ".*pg_autoha_rejoin/, 'node1 log: pg_autoha_rejoin was not started');
is(etcd_get($etcd, ckey($cluster, 'leader')), $new->name, 'the leader is unchanged');
is(sql($new, "SELECT count(*) FROM t170 WHERE src = 'divergent'"), '0', 'the divergent rows never reached the leader');

done_testing();
