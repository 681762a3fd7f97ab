
# 130_switchover: planned handovers under steady writes.
#
#  - autoha_switchover('node2'), called on a replica (node3) while the drill
#    writes through a multi-host DSN: it returns 'node2' once node2 accepts
#    writes; the drill audits every acknowledged write (none lost, none
#    acknowledged by a non-leader after the handover, never two writable
#    primaries); the old leader comes back as a streaming replica of node2
#    by itself (a crash restart into standby mode, no rewind) and stays fenced
#    throughout;
#  - and back: autoha_switchover('node1') on node1 itself;
#  - autoha_switchover() with no target, called on the leader itself, picks
#    the most advanced replica and returns it (the leader's restart into a
#    replica waits for the call to return);
#  - autoha_history() records each handover as "switchover from <old>".
# The write pause of each handover is printed (the benchmark measures it).

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
my $drill = "$bindir/pg_autoha_drill";
plan skip_all => "pg_autoha_drill is not installed" unless -x $drill;

my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;
my %by_name = map { $_->name => $_ } @$nodes;

my ($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node1', 'node1 leads');

my $dsn = sprintf('host=%s port=%s dbname=postgres',
	join(',', map { $_->host } @$nodes), join(',', map { $_->port } @$nodes));

# The drill writes for $secs seconds and at $at runs $cmd; returns its summary.
sub drill_with
{
	my ($tag, $secs, $at, $cmd) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			$drill, '--quiet', '--dsn', $dsn, '--rate', '100', '--writers', '2',
			'--table', "t130_$tag", '--duration', $secs, '--fault-at', $at,
			'--fault-cmd', $cmd,
		],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
	my $rc = $? >> 8;
	note("drill $tag (exit $rc):\n$out");
	note("drill $tag stderr:\n$err") if $err ne '';
	my ($line) = $out =~ /^drill: (.*)$/m;
	my %s = map { split /=/, $_, 2 } split / /, ($line // '');
	$s{rc}  = $rc;
	$s{out} = $out;
	return \%s;
}

# A shell command that runs a switchover on $node; what it returned (or its
# error) goes to $file.
sub switchover_cmd
{
	my ($node, $target, $file) = @_;
	my $arg = defined $target ? "'$target'" : '';
	return sprintf(q{psql -X -qAt -h %s -p %d -d postgres -c "SELECT autoha_switchover(%s)" > %s 2>&1},
		$node->host, $node->port, $arg, $file);
}
my $result_file = "$PostgreSQL::Test::Utils::tmp_check/switchover_result";
sub switchover_result
{
	my $r = -e $result_file ? slurp_file($result_file) : '(no output)';
	chomp $r;
	return $r;
}

# After a handover from $old to $new: $old must be a streaming replica of
# $new, fenced, without a rewind.
sub check_rejoined
{
	my ($old, $new, $log_offset) = @_;
	my $others = [ grep { $_ != $new } @$nodes ];
	my $secs = wait_following($new, $others, 90);
	ok(defined $secs, $old->name . ' and the other replica stream from ' . $new->name);
	is(in_recovery($old), 1, $old->name . ' is in recovery');
	is(sql($old, "SELECT current_setting('autoha.fenced')"), 'on', $old->name . ' is fenced');
	my $log = slurp_file($old->logfile, $log_offset);
	like($log, qr/pg_autoha: switchover: checkpoint done before handing over/,
		$old->name . ' log: checkpointed before fencing writes');
	like($log, qr/pg_autoha: switchover: handed the leader key to "\Q${\ $new->name}\E"/,
		$old->name . ' log: handed the key over');
	like($log, qr/restarting this server as a replica of "\Q${\ $new->name}\E"/,
		$old->name . ' log: restarted as a replica');

	# A rewind is the one documented exception: background WAL (a standby
	# snapshot, autovacuum) written after the final position, which the old
	# leader logs before its restart.  Anything else is a defect.
	# (wait_following above waited through the rewind: it does not count
	# the moment a diverged server streams its old timeline.)
	if ($log =~ /pg_rewind|forked off current database system timeline/)
	{
		like($log, qr/pg_autoha: switchover: \d+ bytes of WAL were written after the final position/,
			$old->name . ' log: a rewind only after background WAL past the final position');
		my $back = poll_until(
			sub { slurp_file($old->logfile, $log_offset) =~ /pg_autoha_rejoin: rewound and made a standby/ },
			120, $old->name . ' to be rewound and restarted');
		ok(defined $back, $old->name . ' was rewound and restarted as a replica');
		note($old->name . ' needed a rewind after the switchover');
	}
	else
	{
		pass($old->name . ' log: no rewind was needed');
	}
	$old->_update_pid(1);
	return;
}

# ---------------------------------------------------------------- to node2
my $off1 = -s $n1->logfile;
my $s = drill_with('a', 8, 3, switchover_cmd($n3, 'node2', $result_file));
is(switchover_result(), 'node2', 'autoha_switchover(\'node2\') on node3 returns node2');
is($s->{lost}, 0, 'switchover to node2: no acknowledged write lost');
is($s->{nonleader_acks_after_takeover}, 0, 'switchover to node2: no write acknowledged by a non-leader');
is($s->{two_primaries}, 'no', 'switchover to node2: never two writable primaries');
cmp_ok($s->{acknowledged} // 0, '>', 300, 'switchover to node2: writes went on (acknowledged ' . ($s->{acknowledged} // 0) . ')');
note("SWITCHOVER node1 -> node2: write pause $s->{max_gap_after_fault_ms} ms");
cmp_ok($s->{max_gap_after_fault_ms} // 1e9, '<', 10000, 'switchover to node2: writes resumed (generous bound)');
($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node2', 'node2 leads');
check_rejoined($n1, $n2, $off1);
is(sql($n2, 'SELECT count(*) FROM t130_a'), $s->{acknowledged},
	'node2 holds exactly the acknowledged writes');

# ---------------------------------------------------------------- and back
my $off2 = -s $n2->logfile;
$s = drill_with('b', 8, 3, switchover_cmd($n1, 'node1', $result_file));
is(switchover_result(), 'node1', 'autoha_switchover(\'node1\') on node1 returns node1');
is($s->{lost}, 0, 'switchover back: no acknowledged write lost');
is($s->{nonleader_acks_after_takeover}, 0, 'switchover back: no write acknowledged by a non-leader');
is($s->{two_primaries}, 'no', 'switchover back: never two writable primaries');
note("SWITCHOVER node2 -> node1: write pause $s->{max_gap_after_fault_ms} ms");
($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node1', 'node1 leads again');
check_rejoined($n2, $n1, $off2);
is(sql($n1, 'SELECT count(*) FROM t130_a'), sql($n2, 'SELECT count(*) FROM t130_a'),
	'the first run\'s rows are the same on node1 and node2');

# ---------------------------------------------------------------- no target
# Hold node3 back (its WAL receiver stopped), so node2 is the best replica.
my $wr3 = sql($n3, 'SELECT pid FROM pg_stat_wal_receiver');
ok($wr3, 'node3 has a WAL receiver');
kill 'STOP', $wr3;
sql_ok($n1, 'CREATE TABLE t130_c AS SELECT g AS id FROM generate_series(1, 20000) g');
my $end_c = lsn_int(sql($n1, 'SELECT pg_current_wal_lsn()'));
$n1->wait_for_catchup($n2);
# Each member publishes its position once per loop, so right after the
# catch-up etcd may still show node2 where it was before the new rows, and
# node3 (which publishes what it received before it was stopped) ahead of
# it: wait until node2 has published the position after the new rows.
ok(defined poll_until(
		sub {
			my %st = map { $_->{name} => $_ } @{ autoha_status($n1) || [] };
			return $st{node2} && $st{node3} && lsn_int($st{node2}{lsn}) >= $end_c
			  && lsn_int($st{node2}{lsn}) > lsn_int($st{node3}{lsn});
		},
		30, 'node2 to publish its position after the new rows'),
	'node2 is ahead of node3 in etcd');
my $off3 = -s $n1->logfile;
# called on the leader itself: its session is spared by the fence, and the
# leader restarts only once the call has returned
my $before = etcd_dump($etcd, $cluster);
my $r = sql($n1, 'SELECT autoha_switchover()', timeout => 90);
kill 'CONT', $wr3;
diag("etcd just before the call:\n$before") unless ($r // '') eq 'node2';
is($r, 'node2', 'autoha_switchover() on the leader picks the most advanced replica, node2, and returns it');
check_rejoined($n1, $n2, $off3);
is(sql($n2, 'SELECT count(*) FROM t130_c'), '20000', 'node2 has every row');

# ---------------------------------------------------------------- history
my $hist = sql($n2, "SELECT string_agg(format('%s|%s|%s|%s|%s', timeline, reason, old_leader, new_leader, "
	  . "switched_at > now() - interval '10 minutes'), ';' ORDER BY timeline) FROM autoha_history()");
is($hist,
	'1|switchover from node1|node1|node2|t;2|switchover from node2|node2|node1|t;3|switchover from node1|node1|node2|t',
	'autoha_history() lists the three switchovers');
is(sql($n2, 'SELECT bool_and(switch_lsn > \'0/0\') FROM autoha_history()'), 't', 'every line has its switch LSN');
my $raw = etcd_get($etcd, ckey($cluster, 'history'));
like($raw // '', qr/^\[\[1,\d+,"switchover from node1","[^"]+","node2"\],/,
	'the history key is in Patroni\'s format');
is(etcd_get($etcd, ckey($cluster, 'failover')), undef, 'no failover key is left behind');

# ---------------------------------------------------------------- a lagging target
# node3 stops receiving (its WAL receiver stopped) and falls more than
# maximum_lag_on_failover behind: the leader waits for it without fencing
# anything, gives up after 30 s and cancels the request, and the caller gets
# an error that says so.
($leader) = wait_for_leader($nodes, 30);
my $lagger = (grep { $_ != $leader } @$nodes)[0];
$_->append_conf('postgresql.conf', "autoha.maximum_lag_on_failover = '64kB'\n") for @$nodes;
$_->reload for @$nodes;
my $wr = sql_ok($lagger, 'SELECT pid FROM pg_stat_wal_receiver');
kill 'STOP', $wr;
sql_ok($leader, 'CREATE TABLE t130_d AS SELECT g AS id, repeat(\'x\', 100) AS pad FROM generate_series(1, 20000) g');
my $loff = -s $leader->logfile;
my $t0 = now_s();
my ($res, $err) = sql($lagger, "SELECT autoha_switchover('${\ $lagger->name}')", timeout => 120);
my $waited = now_s() - $t0;
kill 'CONT', $wr;
ok(!defined $res, 'a switchover to a replica that does not catch up fails');
like($err // '', qr/leader "\Q${\ $leader->name}\E" cancelled the switchover/, 'the error says the leader cancelled it');
like($err // '', qr/HINT:.*server log of "\Q${\ $leader->name}\E"/, 'with a hint where to read why');
note(sprintf('the lagging switchover was given up after %.1f s', $waited));
cmp_ok($waited, '>=', 25, 'the leader waited for the target before giving up');
my $llog = slurp_file($leader->logfile, $loff);
like($llog, qr/cancelled the switchover request: "\Q${\ $lagger->name}\E" did not come within autoha.maximum_lag_on_failover/,
	'the leader logged why');
unlike($llog, qr/switchover: handing the leader key over to "\Q${\ $lagger->name}\E"/,
	'the leader never fenced writes for it');
is(sql($leader, "SELECT current_setting('autoha.fenced')"), 'off', 'the leader still accepts writes');
is(etcd_get($etcd, ckey($cluster, 'failover')), undef, 'the cancelled request is gone');

done_testing();
