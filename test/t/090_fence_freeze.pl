
# 090_fence_freeze: a leader frozen (SIGSTOP of the postmaster and every
# child) for longer than the TTL loses its lease; a replica is elected and
# takes the writes of a background writer that uses a multi-host connection
# string with target_session_attrs=read-write.  The cluster is then paused
# (so that the old leader does not rejoin at once, see 160_rejoin), and when
# the old leader is resumed (SIGCONT) it is still a primary, but it never
# again commits a transaction that wrote, whatever path the write takes:
# plain INSERT, DDL,
# COPY, UPDATE/DELETE, PREPARE TRANSACTION, COMMIT PREPARED of a transaction
# prepared before the freeze, synchronous_commit = off/local,
# default_transaction_read_only = off, BEGIN READ WRITE, SET LOCAL.  Reads
# keep working.  The writer's log is audited: every acknowledged write is on
# the new leader, the old leader acknowledged nothing that was sent after the
# fault, and the two servers' acknowledgements never overlap in time.  After
# autoha_resume() the old leader rejoins as a replica of the new one, and
# none of the refused writes is on it.
#
# pg_autoha's synchronous mode does not exist yet, so with plain asynchronous
# replication a commit acknowledged a few microseconds before the SIGSTOP may
# legitimately be missing on the new leader (bounded loss, invariant 5).  To
# make the "every acknowledged write survives" audit exact, the test sets
# synchronous_standby_names = 'ANY 1 (node2, node3)' on the old leader by hand
# before the writer starts, and resets it as soon as the old leader is
# resumed, so that no attempt on the fenced server is hidden by a commit that
# waits for a standby.

use strict;
use warnings;
use IO::Handle;
use IPC::Run;
use POSIX ();
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $ttl            = $AutohaTest::TTL;
my $writer_timeout = 6;                  # s, one psql of the background writer
# s; also long enough for the writer to give up on a psql stuck on the
# frozen server, so nothing sent before the freeze is acknowledged after it
my $min_freeze = $ttl + 3 > $writer_timeout + 3 ? $ttl + 3 : $writer_timeout + 3;
my $attack_secs    = 12;                 # s of write attempts on the old leader

my @frozen;        # PIDs we sent SIGSTOP to and not yet SIGCONT
my $writer_pid;    # the background writer (our child)

sub resume_frozen
{
	return unless @frozen;
	# children first, the postmaster (first in the list) last
	kill 'CONT', reverse @frozen;
	@frozen = ();
	return;
}

sub stop_writer
{
	my ($stopfile) = @_;
	return unless $writer_pid;
	if (defined $stopfile)
	{
		if (open(my $fh, ">", $stopfile)) { close($fh); }
		my $t0 = now_s();
		while (now_s() - $t0 < $writer_timeout + 10)
		{
			my $r = waitpid($writer_pid, POSIX::WNOHANG());
			if ($r == $writer_pid || $r == -1) { $writer_pid = undef; return; }
			usleep(100_000);
		}
		diag("writer $writer_pid did not stop, killing it");
	}
	kill 'KILL', $writer_pid;
	waitpid($writer_pid, 0);
	$writer_pid = undef;
	return;
}

# Runs before the END blocks of AutohaTest and Cluster.pm (which stop the
# servers: a stopped postmaster would not shut down).
END
{
	my $code = $?;
	resume_frozen();
	stop_writer(undef) if $writer_pid;
	$? = $code;
}

# The background writer: a forked child running one psql per INSERT through
# the multi-host connection string.  psql exits 0 only if the INSERT
# committed; RETURNING inet_server_port() says which server acknowledged it.
# One line per attempt:  ack <id> <port> <t_start> <t_end>
#                        fail <id> 0 <t_start> <t_end> <error>
sub start_writer
{
	my ($dsn, $logfile, $stopfile) = @_;
	my $pid = fork();
	die "fork failed: $!" unless defined $pid;
	return $pid if $pid;

	# child: never run the parent's END blocks or Test::More
	$SIG{$_} = sub { POSIX::_exit(0) } foreach qw(INT TERM HUP);
	eval {
		open(my $fh, '>>', $logfile) or die "cannot open $logfile: $!";
		$fh->autoflush(1);
		my $id = 0;
		until (-e $stopfile)
		{
			$id++;
			my ($out, $err) = ('', '');
			my $t0 = Time::HiRes::time();
			my $ok = eval {
				IPC::Run::run(
					[
						'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $dsn, '-c',
						"INSERT INTO t090 (id, src) VALUES ($id, 'writer') RETURNING id, inet_server_port()"
					],
					'<', \undef, '>', \$out, '2>', \$err,
					IPC::Run::timeout($writer_timeout));
			};
			my $exc = $@;
			my $t1  = Time::HiRes::time();
			if ($ok && $out =~ /^(\d+)\|(\d+)\s*$/ && $1 == $id)
			{
				printf $fh "ack %d %d %.6f %.6f\n", $id, $2, $t0, $t1;
			}
			else
			{
				my $e = $exc ? "exception: $exc" : $err;
				$e =~ s/\s+/ /g;
				printf $fh "fail %d 0 %.6f %.6f %s\n", $id, $t0, $t1, substr($e, 0, 300);
			}
			usleep(20_000);
		}
		close $fh;
	};
	POSIX::_exit(0);
}

sub read_writer_log
{
	my ($logfile) = @_;
	my @rows;
	open(my $fh, '<', $logfile) or return [];
	while (my $l = <$fh>)
	{
		chomp $l;
		my ($kind, $id, $port, $t0, $t1, $err) = split(/ /, $l, 6);
		next unless defined $t1;
		push @rows, { kind => $kind, id => $id, port => $port, t0 => $t0, t1 => $t1, err => $err // '' };
	}
	close $fh;
	return \@rows;
}

# One write attempt in a new session: ($exit_code, $stdout, $stderr);
# exit code 0 means every statement, COMMIT included, succeeded.
sub attempt
{
	my ($node, $sql, $timeout) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $rc = eval {
		$node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
			stdout    => \$out,
			stderr    => \$err,
			timeout   => $timeout // 10,
			timed_out => \$timed_out);
	};
	if ($@) { $err .= " [exception: $@]"; $rc = -1; }
	$rc = -1 if $timed_out || !defined $rc;
	$err .= ' [timed out]' if $timed_out;
	return ($rc, $out, $err);
}

# How a refused attempt was refused.
sub refusal_kind
{
	my ($err) = @_;
	return 'fence' if $err =~ /25006: pg_autoha: cannot /;
	return 'read-only' if $err =~ /25006: cannot execute .* in a read-only transaction/;
	return 'terminated'
	  if $err =~ /57P01|terminating connection|server closed the connection|connection to server .* lost/;
	return 'other';
}

# ------------------------------------------------------------------ setup
my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(
	etcd         => $etcd,
	n            => 3,
	cluster_name => $cluster,
	conf         => { max_prepared_transactions => 10 });
my ($n1, $n2, $n3) = @$nodes;
my ($old) = wait_for_leader($nodes, 30);
is($old && $old->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
my @others = ($n2, $n3);
my %node_of_port = map { $_->port => $_ } @$nodes;
my $old_port = $old->port;

sql_ok($old,
	"CREATE TABLE t090 (id bigint PRIMARY KEY, src text NOT NULL, port int DEFAULT inet_server_port(), at timestamptz DEFAULT clock_timestamp())"
);
sql_ok($old, "INSERT INTO t090 (id, src) SELECT -g, 'seed' FROM generate_series(1, 100) g");

# Acknowledged means on a replica too (see the header).
sql_ok($old, "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (node2, node3)'");
sql_ok($old, 'SELECT pg_reload_conf()');
ok(defined poll_until(
		sub {
			(sql($old, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'") // '') eq '2';
		},
		30, 'both replicas to be quorum standbys'),
	'the old leader waits for one of the replicas at commit');

# A transaction prepared before the fault: COMMIT PREPARED of it must be
# refused on the old leader once it is fenced.
sql_ok($old,
	"BEGIN; INSERT INTO t090 (id, src) VALUES (0, 'prepared before the freeze'); PREPARE TRANSACTION 'pre_freeze';"
);
is(sql($old, "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'pre_freeze'"), '1',
	'a transaction is prepared on the leader before the fault');
$old->wait_for_catchup($_) for @others;

# ------------------------------------------------------------------ writer
my $dsn = 'host=127.0.0.1,127.0.0.1,127.0.0.1 port='
  . join(',', map { $_->port } @$nodes)
  . ' dbname=postgres target_session_attrs=read-write connect_timeout=2';
my $writer_log = "$PostgreSQL::Test::Utils::tmp_check/090_writer.log";
my $stopfile   = "$PostgreSQL::Test::Utils::tmp_check/090_writer.stop";
unlink $writer_log, $stopfile;
note("background writer DSN: $dsn");
$writer_pid = start_writer($dsn, $writer_log, $stopfile);
note("background writer started: pid $writer_pid");

ok(defined poll_until(
		sub { (grep { $_->{kind} eq 'ack' && $_->{port} == $old_port } @{ read_writer_log($writer_log) }) >= 20 },
		60, 'the writer to get 20 acknowledgements from the leader'),
	'the background writer writes to the leader')
  or BAIL_OUT('the background writer does not work: '
	  . join(' | ', map { $_->{err} } grep { defined } (grep { $_->{kind} eq 'fail' } @{ read_writer_log($writer_log) })[0 .. 4]));

# ------------------------------------------------------------------ freeze
my $pm = $old->{_pid};
my $t_freeze = now_s();
stop_every_process($old, \@frozen);
my $t_frozen = now_s();
my @states = proc_states(@frozen);
note(sprintf("froze %s: postmaster %d and %d children in %.3f s (states %s)",
		$old->name, $pm, scalar(@frozen) - 1, $t_frozen - $t_freeze, "@states"));
ok(!grep({ !/:[TZ]$/ } @states), 'the postmaster and all its children are stopped');

# Stay frozen for longer than the TTL, and until another server has
# acknowledged a write of the background writer.
my ($first_new_ack, $new_port);
my $elected = poll_until(
	sub {
		if (!defined $first_new_ack)
		{
			my ($a) = grep { $_->{kind} eq 'ack' && $_->{port} != $old_port && $_->{t0} > $t_freeze }
			  @{ read_writer_log($writer_log) };
			if ($a)
			{
				$first_new_ack = $a->{t1} - $t_freeze;
				$new_port      = $a->{port};
			}
		}
		return defined $first_new_ack && now_s() - $t_freeze >= $min_freeze
		  && now_s() - $t_freeze >= $first_new_ack + 1;
	},
	90, 'another server to acknowledge a write of the background writer', 0.1);
ok(defined $elected, 'while the leader is frozen another server takes the writes')
  or diag("etcd:\n" . etcd_dump($etcd, $cluster));
note(sprintf("FENCE freeze: first write acknowledged by another server (port %s) %.2f s after the freeze (ttl %d s)",
		$new_port // '-', $first_new_ack // -1, $ttl));
my ($new) = wait_for_leader(\@others, 30);
ok($new, 'a new leader among the replicas');
# a frozen leader's lease expires; it did not announce a shutdown, so the
# candidates must not wait for their (frozen, never ending) stream from it
unlike($new ? slurp_file($new->logfile) : '', qr/waiting for its stream to end/,
	'the new leader did not wait for the frozen leader\'s stream');
is($new && $new->port, $new_port, 'the new leader is the server that took the writes');
BAIL_OUT('no new leader while the old one was frozen') unless $new && defined $new_port;
my ($other) = grep { $_ != $new } @others;
is(etcd_get($etcd, ckey($cluster, 'leader')), $new->name, 'the leader key names ' . $new->name);

# ------------------------------------------------------------------ resume
# paused: the old leader stays a fenced primary instead of rejoining
sql_ok($new, 'SELECT autoha_pause()');
my $log_offset = -s $old->logfile;
my $t_cont = now_s();
resume_frozen();
note(sprintf("resumed %s after %.2f s frozen", $old->name, $t_cont - $t_freeze));

# Commits on the old leader must not wait for a standby (see the header).
my $reset_err;
ok(defined poll_until(
		sub {
			my $r;
			($r, $reset_err) = sql($old,
				"ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf();", timeout => 5);
			return defined $r;
		},
		20, 'ALTER SYSTEM RESET synchronous_standby_names on the old leader'),
	'synchronous_standby_names reset on the old leader')
  or diag("last error: $reset_err");

# ------------------------------------------------------------------ attack
# Every path to a commit that wrote.  __ID__ is a fresh id per attempt.
my $ins = "INSERT INTO t090 (id, src) VALUES (__ID__, 'attack-%s')";
my @variants = (
	[ insert       => 0, sprintf("$ins;", 'insert') ],
	[ insert_rw    => 1, sprintf("BEGIN READ WRITE; $ins; COMMIT;", 'insert-rw') ],
	[ ddl          => 0, 'CREATE TABLE attack_ddl___ID__ (x int);' ],
	[ ddl_rw       => 1, 'BEGIN READ WRITE; CREATE TABLE attack_ddlrw___ID__ (x int); COMMIT;' ],
	[ copy         => 0, "COPY t090 (id, src) FROM STDIN;\n__ID__\tattack-copy\n\\.\n" ],
	[ copy_rw      => 1, "BEGIN READ WRITE;\nCOPY t090 (id, src) FROM STDIN;\n__ID__\tattack-copy-rw\n\\.\nCOMMIT;" ],
	[ update_rw    => 1, "BEGIN READ WRITE; UPDATE t090 SET src = 'attack-update' WHERE id = -1; COMMIT;" ],
	[ delete_rw    => 1, "BEGIN READ WRITE; DELETE FROM t090 WHERE id = -2; COMMIT;" ],
	[ prepare      => 1, sprintf("BEGIN READ WRITE; $ins; PREPARE TRANSACTION 'attack___ID__';", 'prepare') ],
	[ commit_prepared => 1, "COMMIT PREPARED 'pre_freeze';" ],
	[ sync_off     => 0, sprintf("SET synchronous_commit = off; $ins;", 'sync-off') ],
	[ sync_off_rw  => 1, sprintf("SET synchronous_commit = off; BEGIN READ WRITE; $ins; COMMIT;", 'sync-off-rw') ],
	[ sync_local_rw => 1, sprintf("SET synchronous_commit = local; BEGIN READ WRITE; $ins; COMMIT;", 'sync-local-rw') ],
	[ dtro_off     => 0, sprintf("SET default_transaction_read_only = off; $ins;", 'dtro-off') ],
	[ dtro_off_rw  => 1,
		sprintf("SET default_transaction_read_only = off; SET synchronous_commit = off; BEGIN READ WRITE; $ins; COMMIT;", 'dtro-off-rw') ],
	[ characteristics => 0, sprintf("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; $ins;", 'characteristics') ],
	[ set_local    => 1,
		sprintf("BEGIN; SET LOCAL transaction_read_only = off; SET LOCAL synchronous_commit = off; SET LOCAL default_transaction_read_only = off; $ins; COMMIT;", 'set-local') ],
);
# the second field: 1 if the attempt can reach COMMIT (or PREPARE, or
# COMMIT PREPARED) on a read-only session, so the fence itself must refuse it

my %stats;      # variant => { tries, committed, kinds => {kind => n}, last_err }
my @committed;  # descriptions of attempts that committed
my @two_writers;
my @new_refused;
my $attack_id = 1_000_000;
my $probe_id  = 2_000_000;
my $rounds    = 0;
my $t_attack  = now_s();
while (now_s() - $t_attack < $attack_secs)
{
	$rounds++;
	my @accepting;
	foreach my $v (@variants)
	{
		my ($name, $to_commit, $tmpl) = @$v;
		(my $sql = $tmpl) =~ s/__ID__/$attack_id/g;
		$attack_id++;
		my ($rc, $out, $err) = attempt($old, $sql, 10);
		my $st = $stats{$name} //= { tries => 0, committed => 0, kinds => {} };
		$st->{tries}++;
		if ($rc == 0)
		{
			$st->{committed}++;
			push @committed, sprintf('%.2f s after SIGCONT: %s: %s', now_s() - $t_cont, $name, $sql);
			push @accepting, $old->name;
		}
		else
		{
			$st->{kinds}{ refusal_kind($err) }++;
			$st->{last_err} = $err;
		}
	}
	# at the same moment: the new leader accepts writes, the other replica not
	foreach my $n ($new, $other)
	{
		my $id = $probe_id++;
		my ($rc, $out, $err) = attempt($n, "INSERT INTO t090 (id, src) VALUES ($id, 'probe') RETURNING id;", 5);
		if ($rc == 0 && $out =~ /^$id$/m) { push @accepting, $n->name; }
		elsif ($n == $new) { push @new_refused, sprintf('%.2f s: %s', now_s() - $t_cont, $err); }
	}
	push @two_writers, sprintf('%.2f s after SIGCONT: %s', now_s() - $t_cont, join(',', @accepting))
	  if @accepting > 1 || grep { $_ ne $new->name } @accepting;
}
my $attack_elapsed = now_s() - $t_attack;
note(sprintf("attacked the old leader for %.1f s (%.1f s to %.1f s after SIGCONT): %d rounds, %d attempts",
		$attack_elapsed, $t_attack - $t_cont, now_s() - $t_cont, $rounds, $attack_id - 1_000_000));
foreach my $v (@variants)
{
	my $st = $stats{ $v->[0] };
	note(sprintf("  %-16s tries %d committed %d refusals %s", $v->[0], $st->{tries}, $st->{committed},
			join(' ', map { "$_=$st->{kinds}{$_}" } sort keys %{ $st->{kinds} })));
}
is_deeply(\@committed, [], 'the old leader committed none of the write attempts (exit status)');
foreach my $v (@variants)
{
	my ($name, $to_commit) = @$v;
	my $st = $stats{$name};
	is($st->{kinds}{other} // 0, 0, "$name: every refusal is the fence, read-only, or a terminated session")
	  or diag("$name last error: $st->{last_err}");
	ok(($st->{kinds}{fence} // 0) > 0, "$name: refused by the pg_autoha write fence at commit")
	  or diag("$name last error: " . ($st->{last_err} // ''))
	  if $to_commit;
}
is_deeply(\@two_writers, [], 'only the new leader accepted writes during the attack');
is_deeply(\@new_refused, [], 'the new leader accepted every probe write');

my $e_rw = $stats{insert_rw}{last_err} // '';
note("last refusal of BEGIN READ WRITE; INSERT; COMMIT on the old leader:\n$e_rw");
like($e_rw, qr/ERROR:\s+25006: pg_autoha: cannot commit a transaction that wrote: this server does not hold the leader lease/,
	'the refusal is SQLSTATE 25006 with the fence message');
like($e_rw, qr/DETAIL:\s+Fenced because /, 'with the reason in the detail');
like($e_rw, qr/HINT:\s+Write to the leader "\Q${\ $new->name}\E" at 127\.0\.0\.1:${\ $new->port}/,
	'and a hint naming the new leader');
like($stats{commit_prepared}{last_err} // '', qr/pg_autoha: cannot commit a prepared transaction/,
	'COMMIT PREPARED is refused by the fence');
like($stats{prepare}{last_err} // '', qr/pg_autoha: cannot prepare a transaction that wrote/,
	'PREPARE TRANSACTION of a writing transaction is refused by the fence');

# ------------------------------------------------------------------ the old leader's tables
is(sql($old, "SELECT count(*) FROM t090 WHERE src LIKE 'attack%'"), '0',
	'no row of any attempt is on the old leader');
is(sql($old, "SELECT count(*) FROM pg_class WHERE relname LIKE 'attack%'"), '0',
	'no table of any DDL attempt exists on the old leader');
is(sql($old, "SELECT count(*) FROM t090 WHERE id IN (-1, -2) AND src = 'seed'"), '2',
	'the rows the UPDATE and DELETE attempts targeted are unchanged');
is(sql($old, "SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts"), 'pre_freeze',
	'no new prepared transaction; pre_freeze is still prepared');
is(sql($old, 'SELECT count(*) FROM t090 WHERE id = 0'), '0',
	'the row of the prepared transaction is not committed');
my $reads = sql($old, "SELECT count(*) FROM t090 WHERE src = 'seed'");
is($reads, '100', 'reads work on the old leader');
is(in_recovery($old), 0, 'the old leader is still a primary (no automatic rejoin yet)');

my $info;
my $reason_secs = poll_until(
	sub {
		$info = autoha_node($old);
		return $info && $info->{fenced} && ($info->{fence_reason} // '') =~ /\Q${\ $new->name}\E/;
	},
	30, 'autoha_node() of the old leader to name the new leader as the reason');
ok(defined $reason_secs, 'old leader: autoha_node().fenced with a reason naming ' . $new->name);
ok($info && $info->{fenced_since}, 'old leader: autoha_node().fenced_since is set');
note(sprintf("old leader autoha_node(): fenced=%s since %s, reason: %s (decision %s: %s)",
		$info->{fenced} ? 't' : 'f', $info->{fenced_since} // 'NULL', $info->{fence_reason} // 'NULL',
		$info->{decision} // 'NULL', $info->{decision_reason} // 'NULL')) if $info;
my $new_info = autoha_node($new);
ok($new_info && !$new_info->{fenced}, 'new leader: autoha_node().fenced is false');
is(sql($old, 'SHOW default_transaction_read_only'), 'on',
	'a new session on the old leader starts with default_transaction_read_only = on');

my $log = slurp_file($old->logfile, $log_offset);
my ($fence_line) = $log =~ /^(.*pg_autoha: write fence up: .*)$/m;
ok(defined $fence_line, 'old leader log: "write fence up"');
note("old leader: $fence_line") if defined $fence_line;
unlike($log, qr/pg_autoha: write fence down/, 'old leader log: the fence never went down');

# ------------------------------------------------------------------ audit
# stop the writer only now: it kept writing during the attack
my $t_stop = now_s();
stop_writer($stopfile);
my $w = read_writer_log($writer_log);
my @acks = grep { $_->{kind} eq 'ack' } @$w;
my @fails = grep { $_->{kind} eq 'fail' } @$w;
my @old_acks = grep { $_->{port} == $old_port } @acks;
my @new_acks = grep { $_->{port} == $new_port } @acks;
my @odd_acks = grep { $_->{port} != $old_port && $_->{port} != $new_port } @acks;
note(sprintf("writer: %d attempts, %d acknowledged (%d by %s, %d by %s), %d failed",
		scalar(@$w), scalar(@acks), scalar(@old_acks), $old->name, scalar(@new_acks), $new->name, scalar(@fails)));
my %fail_kinds;
$fail_kinds{ $_->{err} =~ /timeout|timed out/i ? 'timeout' : ($_->{err} =~ /read-write|read-only/ ? 'no read-write server' : 'other') }++
  for @fails;
note('writer failures: ' . join(', ', map { "$_=$fail_kinds{$_}" } sort keys %fail_kinds));

is_deeply([ map { $_->{port} } @odd_acks ], [], 'no write acknowledged by the third server');
ok(scalar(@new_acks) > 0, 'the writer landed on the new leader');
ok(scalar(grep { $_->{t0} > $t_cont } @new_acks) > 0, 'and kept writing there after the old leader was resumed');

my @late_old = map { sprintf('id %d sent %.3f s after the freeze, acknowledged %.3f s after', $_->{id}, $_->{t0} - $t_freeze, $_->{t1} - $t_freeze) }
  grep { $_->{t0} >= $t_freeze || $_->{t1} >= $t_cont } @old_acks;
is_deeply(\@late_old, [], 'the old leader acknowledged no write sent after the fault');

my $last_old  = (sort { $b <=> $a } map { $_->{t1} } @old_acks)[0];
my $first_new = (sort { $a <=> $b } map { $_->{t0} } @new_acks)[0];
ok(defined $last_old && defined $first_new && $last_old < $first_new,
	'the old leader\'s last acknowledgement came before the new leader\'s first write was sent');
note(sprintf("last acknowledgement of %s %.3f s after the freeze; first write to %s sent %.3f s after the freeze; gap %.3f s",
		$old->name, ($last_old // 0) - $t_freeze, $new->name, ($first_new // 0) - $t_freeze,
		($first_new // 0) - ($last_old // 0)));

my %on_new = map { $_ => 1 } split /\n/, (sql($new, "SELECT id FROM t090 WHERE src = 'writer'") // '');
my @lost = map { $_->{id} } grep { !$on_new{ $_->{id} } } @acks;
is_deeply(\@lost, [], 'every acknowledged write of the writer is on the new leader')
  or diag(scalar(@lost) . ' acknowledged ids missing on ' . $new->name);
is(sql($new, "SELECT count(*) FROM t090 WHERE src LIKE 'attack%'"), '0', 'no attempt on the old leader reached the new leader');
is(sql($new, "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'pre_freeze'"), '1',
	'the transaction prepared before the freeze is still prepared on the new leader');

# ------------------------------------------------------------------ rejoin
sql_ok($new, 'SELECT autoha_resume()');
ok(defined poll_until(sub { (in_recovery($old) // 0) == 1 }, 90, 'the old leader to rejoin'),
	'after autoha_resume() the old leader rejoins as a replica');
$old->_update_pid(1);
ok(defined wait_streaming($new, [ $old, $other ], 120), 'the old leader streams from ' . $new->name);
is(sql($old, "SELECT count(*) FROM t090 WHERE src LIKE 'attack%'"), '0', 'no attempt is on the old leader after it rejoined');
$old->_update_pid(1);

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
done_testing();
