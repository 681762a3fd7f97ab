
# 100_fence_etcd_down: the leader loses etcd.  It stops acknowledging writes
# well before its lease could expire (about 2.5 loop_waits after the last
# renewal it sent), says so in its log and in autoha_node(), ends the client
# sessions that were open (an open writing transaction can no longer commit),
# and new sessions start read-only.  The replicas are not promoted.  When
# etcd comes back on the same data directory, the same leader renews its
# lease, lowers the fence and accepts writes again; nobody else is promoted.

use strict;
use warnings;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $ttl       = $AutohaTest::TTL;
my $loop_wait = $AutohaTest::LOOP_WAIT / 1000.0;
my $cluster   = cluster_name_for_test();
my $etcd      = start_etcd();
my $nodes     = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;
my @replicas = ($n2, $n3);
my ($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');

my $open_psql;    # the session kept open across the fault (our child)
END
{
	my $code = $?;
	if ($open_psql) { eval { $open_psql->kill_kill(grace => 1) }; }
	$? = $code;
}

sql_ok($n1, "CREATE TABLE t100 (id bigint PRIMARY KEY, src text NOT NULL, at timestamptz DEFAULT clock_timestamp())");
my $id = 1;
my $pre_ok = 0;
for (1 .. 20)
{
	my $r = sql($n1, "INSERT INTO t100 (id, src) VALUES ($id, 'before') RETURNING id", timeout => 5);
	$pre_ok++ if defined $r && $r eq $id;
	$id++;
	usleep(20_000);
}
is($pre_ok, 20, 'writes flow to the leader before the fault');

# ---- a session opened before the fault, in a transaction that wrote
my ($s_in, $s_out, $s_err) = ('', '', '');
my $s_timer = IPC::Run::timeout(120);
$open_psql = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $n1->connstr('postgres') ],
	'<', \$s_in, '>', \$s_out, '2>', \$s_err, $s_timer);

# Feed the open session and wait for $re on its stdout (or its exit).
sub session_until
{
	my ($input, $re, $secs) = @_;
	$s_in .= $input;
	my $t0 = now_s();
	while (now_s() - $t0 < $secs)
	{
		eval { $open_psql->pump_nb };
		return 1 if $s_out =~ $re;
		return 0 unless $open_psql->pumpable;
		usleep(20_000);
	}
	return 0;
}
ok(session_until("SELECT 'pid=' || pg_backend_pid();\n", qr/^pid=\d+$/m, 20), 'a session is open on the leader');
my ($open_pid) = $s_out =~ /^pid=(\d+)$/m;
ok(session_until("BEGIN;\nINSERT INTO t100 (id, src) VALUES (-1, 'open session');\n\\echo began\n", qr/^began$/m, 20),
	'it has a transaction open that wrote');
note("open session: backend pid " . ($open_pid // '?'));

# ---- the fault: etcd dies
my $log_offset = -s $n1->logfile;
$etcd->stop('KILL');
my $t_kill = now_s();

# Write for 2 x ttl, a new session per attempt, in two forms: a plain
# INSERT (what a client does; once the fence is up a new session is
# read-only), and one that turns default_transaction_read_only off first, so
# that only the commit-time check can refuse it.  Watch the replicas too.
my %forms = (
	plain  => "INSERT INTO t100 (id, src) VALUES (__ID__, 'during') RETURNING id",
	commit => "SET default_transaction_read_only = off; SET synchronous_commit = off; "
	  . "INSERT INTO t100 (id, src) VALUES (__ID__, 'during-rw') RETURNING id",
);
my %w = map { $_ => { kinds => {} } } keys %forms;
my @promoted;
my $watch = 2 * $ttl;
my $next_replica_check = 0;
while (now_s() - $t_kill < $watch)
{
	my $t1;
	foreach my $form (sort keys %forms)
	{
		my $st = $w{$form};
		(my $q = $forms{$form}) =~ s/__ID__/$id/;
		my ($r, $err) = sql($n1, "\\set VERBOSITY verbose\n$q", timeout => 3);
		$t1 = now_s() - $t_kill;
		if (defined $r && $r =~ /^$id$/m)
		{
			$st->{last_ack} = $t1;
			push @{ $st->{acked_after_refusal} }, sprintf('id %d at %.2f s', $id, $t1)
			  if defined $st->{first_refusal};
		}
		else
		{
			if (!defined $st->{first_refusal})
			{
				$st->{first_refusal} = $t1;
				$st->{first_err}     = $err;
			}
			my $k =
			    $err =~ /25006: pg_autoha: cannot/ ? 'fence'
			  : $err =~ /25006: cannot execute .* read-only/ ? 'read-only'
			  : $err =~ /57P01|terminating connection|server closed the connection/ ? 'terminated'
			  : 'other';
			$st->{kinds}{$k}++;
			$st->{other_err} //= $err if $k eq 'other';
		}
		$id++;
	}
	if ($t1 >= $next_replica_check)
	{
		foreach my $r (@replicas)
		{
			my $rec = in_recovery($r);
			push @promoted, sprintf('%.1f s: %s left recovery', $t1, $r->name) if defined $rec && !$rec;
		}
		$next_replica_check = $t1 + 0.5;
	}
	usleep(20_000);
}
foreach my $form (sort keys %forms)
{
	my $st = $w{$form};
	note(sprintf("FENCE etcd down (%s INSERT): last write acknowledged %.3f s after etcd was killed; first write refused %.3f s after (ttl %d s, loop_wait %.1f s); refusals: %s",
			$form, $st->{last_ack} // -1, $st->{first_refusal} // -1, $ttl, $loop_wait,
			join(', ', map { "$_=$st->{kinds}{$_}" } sort keys %{ $st->{kinds} })));
	note("first refusal ($form):\n" . ($st->{first_err} // ''));
	ok(defined $st->{first_refusal}, "$form: the leader refuses writes once etcd is gone");
	ok(defined $st->{first_refusal} && $st->{first_refusal} < $ttl,
		"$form: it refuses them within ttl ($ttl s), before etcd could expire its lease");
	ok(!defined $st->{last_ack} || $st->{last_ack} < $ttl, "$form: no write acknowledged later than ttl after etcd was lost");
	is_deeply($st->{acked_after_refusal} // [], [], "$form: no write acknowledged after the first refusal");
	is($st->{kinds}{other} // 0, 0, "$form: every refusal is SQLSTATE 25006 (fence or read-only session) or a terminated session")
	  or diag("first other error: $st->{other_err}");
}
ok(($w{commit}{kinds}{fence} // 0) > 0, 'the read-write attempts are refused by the commit-time fence');
like($w{commit}{first_err} // '', qr/25006: pg_autoha: cannot commit a transaction that wrote|terminating connection/,
	'the first refused read-write attempt: fence error (or terminated when the fence went up)');
is_deeply(\@promoted, [], "no replica promoted while etcd is down (watched ${watch} s)");

# ---- what the fenced leader says
my $log = slurp_file($n1->logfile, $log_offset);
my ($up_line) = $log =~ /^(.*pg_autoha: write fence up: .*)$/m;
ok(defined $up_line, 'leader log: "write fence up"');
note("leader: $up_line") if $up_line;
my $info = autoha_node($n1);
ok($info && $info->{fenced}, 'leader: autoha_node().fenced is true');
ok($info && ($info->{fence_reason} // '') ne '', 'leader: autoha_node().fence_reason is set');
ok($info && $info->{fenced_since}, 'leader: autoha_node().fenced_since is set');
note(sprintf('leader autoha_node(): fenced=%s since %s, reason: %s; last_error: %s',
		$info->{fenced} ? 't' : 'f', $info->{fenced_since} // 'NULL', $info->{fence_reason} // 'NULL',
		$info->{last_error} // 'NULL')) if $info;
is(sql($n1, 'SHOW default_transaction_read_only'), 'on',
	'a new session on the fenced leader starts with default_transaction_read_only = on');
is(sql($n1, "SELECT count(*) FROM t100 WHERE src = 'before'"), '20', 'reads work on the fenced leader');

# the session that was open is gone; its transaction cannot commit
ok(defined poll_until(
		sub { (sql($n1, "SELECT count(*) FROM pg_stat_activity WHERE pid = $open_pid") // '') eq '0' },
		10, "backend $open_pid to be gone"),
	'the session open before the fence was terminated');
my ($term_line) = slurp_file($n1->logfile, $log_offset) =~ /^(.*pg_autoha: terminated \d+ client session.*)$/m;
ok(defined $term_line, 'leader log: the worker terminated the open client sessions');
note("leader: $term_line") if $term_line;
session_until("COMMIT;\n\\echo committed\n", qr/^committed$/m, 10);
$s_timer->start(15);
eval { $open_psql->finish; 1 } or note("finish: $@");
my $s_rc = eval { $open_psql->result(0) };
note("open session: psql exit code " . ($s_rc // 'undef') . ", stderr: $s_err");
$open_psql = undef;
unlike($s_out, qr/^committed$/m, 'the open session could not commit');
ok(defined $s_rc && $s_rc != 0, 'its psql exited with an error');
like($s_err, qr/terminating connection|server closed the connection|connection to server was lost/,
	'because its connection was closed');

# ---- etcd back on the same data directory
is(in_recovery($_), 1, $_->name . ' is still a replica') for @replicas;
my $t_restart = now_s();
$etcd->start;
my $t_back = now_s();
my $write_secs = poll_until(
	sub {
		my $r = sql($n1, "INSERT INTO t100 (id, src) VALUES ($id, 'after') RETURNING id", timeout => 3);
		$id++;
		return defined $r && $r eq $id - 1;
	},
	30, 'node1 to accept writes again', 0.1);
ok(defined $write_secs, 'the same leader accepts writes again once etcd is back');
note(sprintf("FENCE etcd back: node1 accepts writes %.2f s after etcd was started (%.2f s after it was healthy; etcd down %.1f s)",
		($t_back - $t_restart) + ($write_secs // -1), $write_secs // -1, $t_restart - $t_kill));
$log = slurp_file($n1->logfile, $log_offset);
my ($down_line) = $log =~ /^(.*pg_autoha: write fence down: .*)$/m;
ok(defined $down_line, 'leader log: "write fence down"');
note("leader: $down_line") if $down_line;
$info = autoha_node($n1);
ok($info && !$info->{fenced}, 'leader: autoha_node().fenced is false');
ok($info && !defined $info->{fence_reason}, 'leader: autoha_node().fence_reason is NULL');
is(sql($n1, 'SHOW default_transaction_read_only'), 'off', 'new sessions on the leader are read-write again');
is(etcd_get($etcd, ckey($cluster, 'leader')), 'node1', 'the leader key still names node1');
my ($l) = wait_for_leader($nodes, 10);
is($l && $l->name, 'node1', 'node1 is the only leader');
is(in_recovery($_), 1, $_->name . ' was not promoted') for @replicas;
is(sql($n1, 'SELECT count(*) FROM t100 WHERE id = -1'), '0', 'the open session\'s write was never committed');
ok(defined wait_streaming($n1, \@replicas, 30), 'the replicas still stream from node1');
sql_ok($n1, "INSERT INTO t100 (id, src) VALUES (1000000, 'last')");
ok($_->poll_query_until('postgres', 'SELECT count(*) = 1 FROM t100 WHERE id = 1000000'),
	'a write on node1 reaches ' . $_->name) for @replicas;

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
done_testing();
