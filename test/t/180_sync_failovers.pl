
# 180_sync_failovers: with autoha.synchronous_mode = on, no acknowledged write
# is lost whatever single server fails.
#
#  - three servers with synchronous_mode = on: the leader writes the "sync"
#    key ({"leader":..., "sync_standby":...}, Patroni's format) naming a
#    standby that streams from it, and its synchronous_standby_names names
#    that standby; autoha_status() says 'sync' for it and 'async' for the
#    other replica, autoha_node() on the leader lists it in sync_standbys;
#  - pg_autoha_drill writes 100 rows/s through a multi-host DSN of all three
#    servers while the leader fails again and again (at least 5 times),
#    alternating kill -9 of every process of the server (no lease release)
#    and a SIGSTOP of every process (postmaster and children) held for longer
#    than the TTL; before each fault the sync key lists a standby streaming
#    from the leader; after it, the new leader is always a member the key
#    listed right before the fault, and the failed server comes back (restart
#    for a kill, SIGCONT for a freeze) as a replica of the new leader, by
#    itself (through pg_rewind if it needs to): on the leader's timeline,
#    caught up, streaming through its slot -- and so does the other replica;
#  - the drill's audit at the end: no acknowledged write lost, never two
#    writable primaries, and (in the window after its --fault-at marker,
#    placed after the last fault was started: see below) no write
#    acknowledged by a server other than the final leader after its takeover;
#    the final leader (the one autoha and etcd say leads) holds at least
#    every acknowledged row and no more than acknowledged + indeterminate,
#    and every replica holds exactly the same rows.
#
# Why --fault-at is late: the drill counts "nonleader_acks_after_takeover"
# as acknowledgements by a server other than the final leader after the final
# leader's first acknowledgement following --fault-at.  With several
# failovers in one run, a --fault-at before them would count the legitimate
# acknowledgements of the intermediate leaders.  So the marker is placed at
# $fault_at, and a new fault is started only before it: at most one failover
# happens after the marker, which keeps the count meaningful.

use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $bindir = `pg_config --bindir`;
chomp $bindir;
my $drill = "$bindir/pg_autoha_drill";
plan skip_all => "pg_autoha_drill is not installed" unless -x $drill;

my $ttl        = $AutohaTest::TTL;
my $rate       = 100;
my $fault_at   = 150;              # s of drill time: the drill's marker
my $duration   = $fault_at + 20;   # s: the drill's whole run
my $min_faults = 5;
my $max_faults = 12;
my $last_start = $fault_at - 10;   # s of drill time: no new fault after this
my $freeze_for = $ttl + 3;         # s: a freeze lasts at least this long

my $json = JSON::PP->new->utf8->allow_nonref->canonical;
my $t_test = now_s();

my $nodes;         # the servers, node1 first
my @frozen;        # PIDs we sent SIGSTOP to and not yet SIGCONT (postmaster first)
my $drill_h;       # the drill's IPC::Run harness

sub resume_frozen
{
	return unless @frozen;
	# children first, the postmaster last
	kill 'CONT', reverse @frozen;
	@frozen = ();
	return;
}

# Runs before the END blocks of AutohaTest and Cluster.pm (a stopped
# postmaster would not shut down).
END
{
	my $code = $?;
	resume_frozen();
	if ($nodes)
	{
		foreach my $n (@$nodes)
		{
			$n->{_pid} = undef unless refresh_pid($n);
		}
	}
	if ($drill_h)
	{
		eval { $drill_h->kill_kill(grace => 5) };
		$drill_h = undef;
	}
	$? = $code;
}

my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
$nodes = make_cluster(
	etcd         => $etcd,
	n            => 3,
	cluster_name => $cluster,
	conf         => { 'autoha.synchronous_mode' => 'on' });
my %by_name = map { $_->name => $_ } @$nodes;
my %by_port = map { $_->port => $_ } @$nodes;

# ---------------------------------------------------------------- helpers
# (sync_key, sync_names, stop_every_process and proc_states are in
# AutohaTest.pm)

sub is_frozen
{
	my ($node) = @_;
	return defined $node->{_pid} && grep { $_ == $node->{_pid} } @frozen;
}

# Diagnostics: etcd and every reachable server's autoha_node().
sub dump_state
{
	my ($why) = @_;
	diag(sprintf("---- state at %.1f s (%s)", now_s() - $t_test, $why));
	diag("etcd:\n" . etcd_dump($etcd, $cluster));
	foreach my $n (@$nodes)
	{
		if (!defined $n->{_pid}) { diag($n->name . ': down'); next; }
		if (is_frozen($n)) { diag($n->name . ': frozen'); next; }
		my $i = autoha_node($n);
		diag($n->name . ' autoha_node(): ' . ($i ? $json->encode($i) : 'unreachable'));
		my $r = sql($n,
			'SELECT application_name, state, sync_state, client_addr FROM pg_stat_replication',
			timeout => 5);
		diag($n->name . " pg_stat_replication:\n" . ($r // '?')) if defined $r && $r ne '';
	}
	return;
}

# Wait until the sync key names $leader and at least one standby, every
# standby it lists streams from $leader, and $leader's
# synchronous_standby_names names them.  Returns the listed names, or ().
sub wait_sync_ready
{
	my ($leader, $timeout) = @_;
	my (@names, $seen);
	my $secs = poll_until(
		sub {
			# etcd unreadable: as if the key were absent
			my $s = eval { sync_key($etcd, $cluster) };
			$seen = $s ? $json->encode($s) : 'absent';
			return 0 unless $s && ($s->{leader} // '') eq $leader->name;
			@names = sync_names($s);
			return 0 unless @names;
			my $streaming = sql($leader,
				"SELECT string_agg(application_name, ',') FROM pg_stat_replication WHERE state = 'streaming'",
				timeout => 5);
			return 0 unless defined $streaming;
			my %st = map { $_ => 1 } split /,/, $streaming;
			return 0 if grep { !$st{$_} } @names;
			my $ssn = sql($leader, 'SHOW synchronous_standby_names', timeout => 5) // '';
			return 0 if grep { $ssn !~ /(^|[\s,("])\Q$_\E($|[\s,)"])/ } @names;
			return 1;
		},
		$timeout,
		'the sync key to list a standby streaming from ' . $leader->name,
		0.1);
	if (!defined $secs)
	{
		diag("last sync key seen: $seen");
		return ();
	}
	return @names;
}

# Set $node->{_pid} from postmaster.pid if that postmaster is alive.
sub refresh_pid
{
	my ($node) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	open(my $fh, '<', $pidfile) or return 0;
	my $pid = <$fh>;
	close $fh;
	chomp $pid if defined $pid;
	return 0 unless defined $pid && $pid =~ /^\d+$/ && AutohaTest::_pid_alive($pid);
	$node->{_pid} = $pid;
	return 1;
}

my $t_drill0;
sub drill_time { return defined $t_drill0 ? now_s() - $t_drill0 : 0; }

# ---------------------------------------------------------------- sync state
my ($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');

my @sync = wait_sync_ready($leader, 60);
ok(scalar(@sync), 'the sync key names the leader and a standby streaming from it')
  or do { dump_state('no sync standby'); BAIL_OUT('the leader never wrote a usable sync key'); };
note('sync key: ' . $json->encode(scalar eval { sync_key($etcd, $cluster) }));
is(scalar(@sync), 1, 'one synchronous standby (synchronous_node_count = 1)');
my ($sync1) = @sync;
my ($async1) = grep { $_->name ne $sync1 && $_ != $leader } @$nodes;
ok($by_name{$sync1} && $by_name{$sync1} != $leader, "the sync standby $sync1 is a replica");
like(sql($leader, 'SHOW synchronous_standby_names'), qr/^"?\Q$sync1\E"?$/,
	"the leader's synchronous_standby_names names $sync1");
is(sql($leader, "SELECT string_agg(application_name || '=' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication"),
	join(',', sort map { $_->name . '=' . ($_->name eq $sync1 ? 'sync' : 'async') } grep { $_ != $leader } @$nodes),
	"pg_stat_replication on the leader: $sync1 sync, " . $async1->name . ' async');

foreach my $n (@$nodes)
{
	my $last;
	my $ok = poll_until(
		sub {
			my $st = autoha_status($n) or return 0;
			my %s = map { $_->{name} => $_->{sync_state} } @$st;
			$last = join(',', map { "$_=" . ($s{$_} // 'NULL') } sort keys %s);
			return $last eq join(',', map { $_->name . '=' . ($_ == $leader ? 'NULL' : $_->name eq $sync1 ? 'sync' : 'async') } sort { $a->name cmp $b->name } @$nodes);
		},
		30, 'autoha_status().sync_state on ' . $n->name);
	ok(defined $ok, 'autoha_status() on ' . $n->name . ": $sync1 sync, " . $async1->name . ' async, leader NULL')
	  or diag('last seen: ' . ($last // 'nothing'));
}
my $li = autoha_node($leader);
is($li && $li->{synchronous_mode}, 'on', 'autoha_node().synchronous_mode is on on the leader');
is_deeply($li && $li->{sync_standbys}, [$sync1], "autoha_node().sync_standbys on the leader lists $sync1");
my $ri = autoha_node($async1);
ok($ri && !defined $ri->{sync_standbys}, 'autoha_node().sync_standbys is NULL on a replica');

# ---------------------------------------------------------------- the drill
my $dsn = sprintf('host=%s port=%s dbname=postgres',
	join(',', map { $_->host } @$nodes), join(',', map { $_->port } @$nodes));
my $drill_out = "$PostgreSQL::Test::Utils::tmp_check/drill_180.out";
my $drill_err = "$PostgreSQL::Test::Utils::tmp_check/drill_180.err";
my $drill_csv = "$PostgreSQL::Test::Utils::tmp_check/drill_180.csv";
my @drill_cmd = (
	$drill, '--dsn', $dsn, '--rate', $rate, '--writers', '2', '--table', 't180',
	'--duration', $duration, '--fault-at', $fault_at, '--fault-cmd', 'true',
	'--csv', $drill_csv);
note("drill: @drill_cmd");
$t_drill0 = now_s();
$drill_h = IPC::Run::start(\@drill_cmd, '<', \undef, '>', $drill_out, '2>', $drill_err,
	IPC::Run::timeout($duration + 180));

ok(defined poll_until(sub { (sql($leader, 'SELECT count(*) FROM t180', timeout => 5) // 0) >= 200 },
		30, 'the drill to write 200 rows'),
	'the drill writes to the leader')
  or do
{
	diag('drill output: ' . (-e $drill_out ? slurp_file($drill_out) : '') . (-e $drill_err ? slurp_file($drill_err) : ''));
	BAIL_OUT('the drill does not write');
};

# ---------------------------------------------------------------- faults
my @cycles;        # one summary line per fault
my $faults = 0;
my $broken;        # why the loop stopped early
while ($faults < $max_faults)
{
	if (drill_time() >= $last_start)
	{
		last;
	}
	my $kind = $faults % 2 == 0 ? 'kill' : 'freeze';
	my $tag  = sprintf('fault %d (%s of %s)', $faults + 1, $kind, $leader->name);
	my $t_cycle = now_s();

	# The sync key must list a standby streaming from the leader: without
	# one no automatic failover is possible, by design.
	my @listed = wait_sync_ready($leader, 60);
	if (!@listed)
	{
		fail("$tag: the sync key lists a standby streaming from " . $leader->name);
		$broken = "no sync standby before $tag";
		last;
	}
	my $t_ready = now_s();
	my $old      = $leader;
	# any server may have been restarted since (a replica ahead of the
	# sync standby is rewound when another member takes over)
	refresh_pid($_) for @$nodes;
	if (!defined $old->{_pid} || !AutohaTest::_pid_alive($old->{_pid}))
	{
		fail("$tag: the leader's postmaster is running");
		$broken = 'no postmaster PID for ' . $old->name;
		last;
	}
	my @others   = grep { $_ != $old } @$nodes;
	my %off      = map { $_->name => -s $_->logfile } @$nodes;

	# ---- the fault
	my $t_fault = now_s();
	my $dt_fault = drill_time();
	my @kids;
	stop_every_process($old, \@frozen);
	my @states = proc_states(@frozen);
	if ($kind eq 'kill')
	{
		@kids = AutohaTest::kill9_node($old);
		kill 'KILL', @kids;
		@frozen = ();
	}
	else
	{
		ok(!grep({ !/:[TZ]$/ } @states), "$tag: the postmaster and every child are stopped")
		  or diag("states: @states");
	}
	# nothing was released: the lease runs out by itself
	is(etcd_get($etcd, ckey($cluster, 'leader')), $old->name,
		"$tag: right after the fault the leader key still names " . $old->name);
	note(sprintf('%s at drill time %.1f s: sync key listed %s; %d processes (%s)',
			$tag, $dt_fault, join(',', @listed), scalar(@states), "@states"));

	# ---- a new leader, one the sync key listed
	my ($new, $secs) = wait_for_leader(\@others, 60);
	if (!$new)
	{
		fail("$tag: a new leader among " . join(',', map { $_->name } @others));
		dump_state("no new leader after $tag");
		$broken = "no new leader after $tag";
		resume_frozen();
		last;
	}
	ok((grep { $_ eq $new->name } @listed),
		sprintf('%s: the new leader %s was listed in the sync key (%s) (%.1f s after the fault)',
			$tag, $new->name, join(',', @listed), $secs))
	  or dump_state("new leader outside the sync set after $tag");
	my $t_new = now_s();

	# ---- the failed server comes back
	my $back;
	if ($kind eq 'kill')
	{
		$back = restart_killed_node($old, \@kids, 60);
		ok(defined $back, "$tag: " . $old->name . ' starts again') or $broken = "no restart after $tag";
	}
	else
	{
		# frozen for longer than the TTL
		my $left = $freeze_for - (now_s() - $t_fault);
		usleep(int($left * 1_000_000)) if $left > 0;
		resume_frozen();
		$back = now_s() - $t_new;
	}
	my $t_back = now_s();
	my $stream = defined $back ? wait_following($new, [ grep { $_ != $new } @$nodes ], 90) : undef;
	ok(defined $stream, "$tag: " . $old->name . ' follows ' . $new->name . ' again, as does the other replica')
	  or do { dump_state("old leader not back after $tag"); $broken //= "old leader not back after $tag"; };
	my $t_end = now_s();
	refresh_pid($_) for @$nodes;
	is(in_recovery($old), 1, "$tag: " . $old->name . ' is in recovery') if defined $stream;

	my @rewound = grep { slurp_file($_->logfile, $off{ $_->name }) =~ /pg_rewind: Done!/ } @$nodes;
	my $rewound = @rewound ? 'rewound: ' . join(',', map { $_->name } @rewound) : 'no rewind';
	my $line = sprintf(
		'%s: drill time %.1f s; waited %.1f s for the sync key; new leader %s after %.1f s; %s after %.1f s; following again %.1f s later (%s); cycle %.1f s',
		$tag, $dt_fault, $t_ready - $t_cycle, $new->name, $t_new - $t_fault,
		$kind eq 'kill' ? 'restarted' : 'resumed', $t_back - $t_fault,
		$t_end - $t_back, $rewound, $t_end - $t_cycle);
	note($line);
	push @cycles, $line;
	$faults++;
	$leader = $new;
	last if $broken;
}
note("faults:\n  " . join("\n  ", @cycles));
cmp_ok($faults, '>=', $min_faults, "the leader failed $faults times (kill -9 and freeze, alternating)")
  or diag(sprintf('stopped at drill time %.1f s%s', drill_time(), $broken ? ": $broken" : ''));

# the cluster ends synchronous again
my ($final) = wait_for_leader($nodes, 60);
ok($final, 'a leader at the end') or dump_state('no leader at the end');
my @final_sync = $final ? wait_sync_ready($final, 60) : ();
ok(scalar(@final_sync), 'the final leader lists a sync standby') or dump_state('no final sync standby');

# ---------------------------------------------------------------- the drill's audit
note(sprintf('waiting for the drill to end (drill time %.1f s of %d)', drill_time(), $duration));
my $finished = eval { $drill_h->finish; 1 };
my $rc = $finished ? ($drill_h->results)[0] : -1;
diag("drill harness: $@") unless $finished;
$drill_h = undef;
my $out = -e $drill_out ? slurp_file($drill_out) : '';
my $err = -e $drill_err ? slurp_file($drill_err) : '';
my ($report) = $out =~ /(pg_autoha_drill report.*)\z/s;
note("drill report (exit $rc):\n" . ($report // $out));
note("drill stderr:\n$err") if $err ne '';
my ($line) = $out =~ /^drill: (.*)$/m;
my %s = map { split /=/, $_, 2 } split / /, ($line // '');
is($rc, 0, 'the drill exits 0');
is($s{lost}, 0, 'no acknowledged write was lost');
is($s{nonleader_acks_after_takeover}, 0, 'no write acknowledged by a non-leader after the final takeover');
is($s{two_primaries}, 'no', 'never two writable primaries in one sampling round');
is($s{overlapping_acks}, 'no', 'no two servers acknowledging in overlapping windows after the marker');
cmp_ok($s{acknowledged} // 0, '>', $rate * $duration / 4,
	'writes went on (acknowledged ' . ($s{acknowledged} // 0) . ' of ' . ($s{attempted} // 0) . ' attempted)');
note(sprintf('drill: acknowledged %s, failed %s, indeterminate %s, in flight at the marker %s, longest gap after the marker %s ms',
		map { $s{$_} // '?' } qw(acknowledged failed indeterminate inflight_acks_after_fault max_gap_after_fault_ms)));

# ---------------------------------------------------------------- independent count
my ($audit_srv, $audit_rows) = $out =~ /^\s+leader at the audit\s+(\S+) \((\d+) rows of this run\)/m;
my ($audit_port) = ($audit_srv // '') =~ /:(\d+)$/;
($final) = wait_for_leader($nodes, 30);
ok($final && defined $audit_port && $final->port == $audit_port,
	'the drill audited the leader autoha names (' . ($final ? $final->name : '-') . ', ' . ($audit_srv // '-') . ')');
is(etcd_get($etcd, ckey($cluster, 'leader')), $final && $final->name, 'the leader key names it');
my @replicas = $final ? grep { $_ != $final } @$nodes : ();
my $following = $final ? wait_following($final, \@replicas, 60) : undef;
ok(defined $following, 'both replicas follow the final leader');
my $rows = $final ? sql($final, 'SELECT count(*) FROM t180') : undef;
ok(defined $rows, 'the final leader answers');
$rows //= -1;
cmp_ok($rows, '>=', $s{acknowledged} // 1e9, "the final leader holds at least every acknowledged row ($rows rows)");
cmp_ok($rows, '<=', ($s{acknowledged} // 0) + ($s{indeterminate} // 0),
	'and no more than acknowledged + indeterminate (no refused write committed)');
is($rows, $audit_rows, 'the same count as the drill\'s audit');
if ($final)
{
	my $digest = "SELECT count(*) || ':' || md5(string_agg(id::text, ',' ORDER BY id)) FROM t180";
	my $want = sql($final, $digest);
	my $lsn  = sql($final, 'SELECT pg_current_wal_lsn()') // '0/0';
	foreach my $r (@replicas)
	{
		poll_until(sub { (sql($r, "SELECT pg_last_wal_replay_lsn() >= '$lsn'", timeout => 5) // '') eq 't' },
			30, $r->name . ' to replay ' . $lsn);
		is(sql($r, $digest), $want, $r->name . ' holds exactly the rows of the final leader');
	}
}
note('autoha_history() on the final leader:' . "\n"
	  . ($final ? sql($final, "SELECT string_agg(format('%s|%s|%s|%s', timeline, reason, old_leader, new_leader), E'\\n' ORDER BY timeline) FROM autoha_history()") // '?' : '?'));

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
note(sprintf('test ran %.1f s', now_s() - $t_test));
done_testing();
