
# 110_fenced_at_birth: a server that starts is fenced until its worker has
# confirmed the leader lease (invariant 3).
#
# (a) The leader of a 3-server cluster is stopped, a replica takes over, the
#     cluster is paused (so that the old leader does not rejoin at once, see
#     160_rejoin) and the old leader is started again as it was (no
#     standby.signal): it comes up as a primary outside the cluster and
#     never commits a write, from the moment pg_ctl start returns:
#     plain INSERT, synchronous_commit = off with
#     default_transaction_read_only = off, BEGIN READ WRITE.  autoha_node()
#     says it is fenced and why; new sessions start read-only.  After
#     autoha_resume() it rejoins as a replica of the new leader.
# (b) A single-server cluster: its leader restarted (fast, then immediate,
#     which leaves the old leader key behind on a lease the new worker does
#     not hold) refuses writes until its worker holds a confirmed lease, then
#     accepts them.  The immediate restart comes first: it must wait for the
#     old lease to expire in etcd; the fast restart (lease revoked at
#     shutdown) finds no leader key and takes it in its worker's first loop.  With track_commit_timestamp, no write committed after
#     the restart carries a commit time before the "write fence down" line.

use strict;
use warnings;
use JSON::PP;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $ttl     = $AutohaTest::TTL;
my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();

# One write attempt in a new session: ($committed, $stderr).
sub attempt
{
	my ($node, $sql, $id) = @_;
	my ($out, $err) = sql($node, "\\set VERBOSITY verbose\n$sql", timeout => 5);
	return ((defined $out && $out =~ /^$id$/m) ? 1 : 0, $err // '');
}

sub refusal_kind
{
	my ($err) = @_;
	return 'fence' if $err =~ /25006: pg_autoha: cannot /;
	return 'read-only' if $err =~ /25006: cannot execute .* in a read-only transaction/;
	return 'terminated'
	  if $err =~ /57P01|terminating connection|server closed the connection|connection to server .* lost/;
	return 'not running' if $err =~ /Connection refused|No such file or directory|the database system is (starting up|shutting down|in recovery mode)/;
	return 'other';
}

# The write forms every probe uses.  __ID__: a fresh id; __SRC__: a label.
my %forms = (
	plain => "INSERT INTO __T__ (id, src) VALUES (__ID__, '__SRC__-plain') RETURNING id;",
	sync_off_dtro_off => "SET synchronous_commit = off; SET default_transaction_read_only = off; "
	  . "INSERT INTO __T__ (id, src) VALUES (__ID__, '__SRC__-dtro-off') RETURNING id;",
	begin_rw => "SET synchronous_commit = off; BEGIN READ WRITE; "
	  . "INSERT INTO __T__ (id, src) VALUES (__ID__, '__SRC__-rw') RETURNING id; COMMIT;",
);
# the forms that reach COMMIT even in a read-only session
my @commit_forms = qw(sync_off_dtro_off begin_rw);

sub form_sql
{
	my ($form, $table, $id, $src) = @_;
	(my $q = $forms{$form}) =~ s/__T__/$table/g;
	$q =~ s/__ID__/$id/g;
	$q =~ s/__SRC__/$src/g;
	return $q;
}

# "lease <id>" an etcd key hangs on ("lease 0": none), or "absent"
sub key_lease
{
	my ($key) = @_;
	my ($ok, $out, $err) = AutohaTest::etcdctl($etcd, 10, 'get', $key, '-w', 'json');
	return "unreadable ($err)" unless $ok;
	my $r = JSON::PP->new->allow_bignum->decode($out);
	my ($kv) = @{ $r->{kvs} || [] };
	return 'absent' unless $kv;
	return 'lease ' . ($kv->{lease} // 0);
}

# "2026-11-22 06:27:20.765 UTC [pid] LOG:  pg_autoha: write fence down..."
sub log_ts
{
	my ($line) = @_;
	return $line =~ /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+)/ ? $1 : undef;
}

############################################################################
# (a) the old leader started again as a primary
note('---- (a) old leader restarted while another server holds the leader key');
my $nodes = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;
my ($old) = wait_for_leader($nodes, 30);
is($old && $old->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
sql_ok($n1, "CREATE TABLE t110 (id bigint PRIMARY KEY, src text NOT NULL)");
sql_ok($n1, "INSERT INTO t110 (id, src) SELECT g, 'before' FROM generate_series(1, 100) g");
$n1->wait_for_catchup($_) for ($n2, $n3);

$n1->stop('fast');
my $t_stop = now_s();
my ($new, $lead_secs) = wait_for_leader([ $n2, $n3 ], 60);
ok($new, 'a replica takes over') or BAIL_OUT('no failover');
ok(defined poll_until(sub { (sql($new, "INSERT INTO t110 (id, src) VALUES (200000, 'new leader') RETURNING 1", timeout => 3) // '') eq '1' },
		30, 'the new leader to accept a write'),
	$new->name . ' accepts writes');
note(sprintf('%s leads %.2f s after node1 was stopped', $new->name, now_s() - $t_stop));
ok(!-e $n1->data_dir . '/standby.signal', 'node1 has no standby.signal');

# paused: the old leader stays a fenced primary instead of rejoining
sql_ok($new, 'SELECT autoha_pause()');
my $log_offset = -s $n1->logfile;
$n1->start;
my $t_start = now_s();
my (%tries, %committed, %kinds, %last_err, $first_try);
my $id = 100000;
while (now_s() - $t_start < 10)
{
	foreach my $form (sort keys %forms)
	{
		my $t = now_s() - $t_start;
		my ($ok, $err) = attempt($n1, form_sql($form, 't110', $id, 'old-primary'), $id);
		$first_try //= sprintf('%s at %.3f s: %s', $form, $t, $ok ? 'COMMITTED' : 'refused (' . refusal_kind($err) . ')');
		$tries{$form}++;
		if ($ok) { push @{ $committed{$form} }, sprintf('id %d at %.2f s', $id, $t); }
		else { $kinds{$form}{ refusal_kind($err) }++; $last_err{$form} = $err; }
		$id++;
	}
}
note("first attempt after pg_ctl start returned: $first_try");
foreach my $form (sort keys %forms)
{
	note(sprintf('  %-18s tries %d committed %d refusals %s', $form, $tries{$form},
			scalar(@{ $committed{$form} || [] }),
			join(' ', map { "$_=$kinds{$form}{$_}" } sort keys %{ $kinds{$form} || {} })));
	is_deeply($committed{$form} || [], [], "$form: the restarted old primary committed nothing in 10 s");
	is($kinds{$form}{other} // 0, 0, "$form: every refusal is SQLSTATE 25006")
	  or diag("$form last error: $last_err{$form}");
}
foreach my $form (@commit_forms)
{
	ok(($kinds{$form}{fence} // 0) > 0, "$form: refused by the write fence at commit");
}
like($last_err{begin_rw} // '', qr/HINT:\s+Write to the leader "\Q${\ $new->name}\E" at 127\.0\.0\.1:${\ $new->port}/,
	'the refusal names the new leader in its hint');
note("last refusal of BEGIN READ WRITE on the old primary:\n" . ($last_err{begin_rw} // ''));

is(in_recovery($n1), 0, 'node1 runs as a primary');
is(sql($n1, "SELECT count(*) FROM t110 WHERE src LIKE 'old-primary%'"), '0', 'none of the writes is on node1');
is(sql($n1, "SELECT count(*) FROM t110 WHERE src = 'before'"), '100', 'reads work on node1');
is(sql($new, "SELECT count(*) FROM t110 WHERE src LIKE 'old-primary%'"), '0', 'none of the writes is on the new leader');
is(sql($n1, 'SHOW default_transaction_read_only'), 'on', 'a new session on node1 starts read-only');
my $info = autoha_node($n1);
ok($info && $info->{fenced}, 'node1: autoha_node().fenced is true');
is(sql($n1, "SELECT current_setting('autoha.fenced')"), 'on', 'node1: autoha.fenced shows on');
is(sql($new, "SELECT current_setting('autoha.fenced')"), 'off', 'the new leader: autoha.fenced shows off');
ok($info && $info->{fenced_since}, 'node1: autoha_node().fenced_since is set');
note(sprintf('node1 autoha_node(): fenced=%s since %s, reason: %s; decision %s: %s; leader %s',
		$info->{fenced} ? 't' : 'f', $info->{fenced_since} // 'NULL', $info->{fence_reason} // 'NULL',
		$info->{decision} // 'NULL', $info->{decision_reason} // 'NULL', $info->{leader} // 'NULL'))
  if $info;
like($info && $info->{fence_reason} // '', qr/"\Q${\ $new->name}\E"/, 'node1: the fence reason names the leader');
my $log = slurp_file($n1->logfile, $log_offset);
unlike($log, qr/pg_autoha: write fence down/, 'node1 log: the fence never went down since the start');
is(etcd_get($etcd, ckey($cluster, 'leader')), $new->name, 'the leader key still names ' . $new->name);
my ($l) = wait_for_leader($nodes, 10);
is($l && $l->name, $new->name, $new->name . ' is the only leader');
like($info->{decision_reason} // '', qr/paused/, 'node1: paused, it says it stays fenced instead of rejoining');

# resumed: it rejoins (through pg_rewind if its WAL went past the fork)
sql_ok($new, 'SELECT autoha_resume()');
ok(defined poll_until(sub { (in_recovery($n1) // 0) == 1 }, 90, 'node1 to rejoin'),
	'after autoha_resume() node1 rejoins as a replica');
$n1->_update_pid(1);
ok(defined wait_streaming($new, [ grep { $_ != $new } @$nodes ], 120),
	'node1 streams from ' . $new->name);
is(sql($n1, "SELECT count(*) FROM t110 WHERE src LIKE 'old-primary%'"), '0', 'none of the refused writes is on node1');
$n1->_update_pid(1);
$_->stop('fast') for @$nodes;

############################################################################
# (b) a single-server cluster restarted
note('---- (b) single-server cluster restarted');
my $solo_cluster = cluster_name_for_test('solo');
my ($solo) = @{
	make_cluster(
		etcd         => $etcd,
		n            => 1,
		cluster_name => $solo_cluster,
		prefix       => 'solo',
		conf         => { track_commit_timestamp => 'on' })
};
ok(defined wait_for_leader([$solo], 30), 'solo1 leads its own cluster');
sql_ok($solo, "CREATE TABLE t110s (id bigint PRIMARY KEY, src text NOT NULL)");

foreach my $mode (qw(immediate fast))
{
	my $off = -s $solo->logfile;
	$solo->stop($mode);
	my $key_after_stop = etcd_get($etcd, ckey($solo_cluster, 'leader'));
	note(sprintf('stop -m %s: leader key %s', $mode, defined $key_after_stop ? "still \"$key_after_stop\" (lease not revoked)" : 'released'));
	$solo->start;
	my $t0 = now_s();
	my ($first_ok, %refused, $fenced_sample, @committed_ids);
	my $base = ($mode eq 'fast' ? 1 : 2) * 1_000_000;
	my $next = $base;
	my $secs = poll_until(
		sub {
			foreach my $form (sort keys %forms)
			{
				my $i = $next++;
				my ($ok, $err) = attempt($solo, form_sql($form, 't110s', $i, "restart-$mode"), $i);
				if ($ok)
				{
					$first_ok = sprintf('%s at %.3f s', $form, now_s() - $t0);
					return 1;
				}
				$refused{ refusal_kind($err) }++;
				$refused{_err} //= $err if refusal_kind($err) eq 'other';
				$refused{_last} = $err;
				$fenced_sample //= autoha_node($solo);
			}
			return 0;
		},
		30, "solo1 to accept a write after a $mode restart", 0.02);
	my $other_err = delete $refused{_err};
	my $last_err  = delete $refused{_last};
	ok(defined $secs, "$mode restart: writes are accepted again")
	  or diag("leader key: " . key_lease(ckey($solo_cluster, 'leader')) . ", member key: "
		  . key_lease(ckey($solo_cluster, 'members', 'solo1')) . "; solo1 log since the restart:\n"
		  . join('', grep { /pg_autoha/ && !/statement:|ERROR|DETAIL|HINT|LOCATION/ }
			  split(/^/m, slurp_file($solo->logfile, $off))));
	my $n_refused = 0;
	$n_refused += $refused{$_} for keys %refused;
	note(sprintf("FENCE at birth (%s restart): first write accepted %.3f s after pg_ctl start returned (%s); %d attempts refused before: %s",
			$mode, $secs // -1, $first_ok // '-', $n_refused,
			join(', ', map { "$_=$refused{$_}" } sort keys %refused)));
	is($refused{other} // 0, 0, "$mode restart: every refusal is SQLSTATE 25006")
	  or diag("other error: $other_err");
	note("last refusal:\n$last_err") if defined $last_err;
	if ($mode eq 'immediate')
	{
		# the old key hangs on a lease this start does not hold: fenced
		# until etcd expires it (up to ttl), whatever the timing
		ok($n_refused > 0, 'immediate restart: writes were refused before the worker held the lease');
		ok($fenced_sample && $fenced_sample->{fenced}, 'immediate restart: autoha_node() said fenced meanwhile');
	}
	note(sprintf('autoha_node() while refused: fenced=%s reason: %s; decision: %s',
			$fenced_sample->{fenced} ? 't' : 'f', $fenced_sample->{fence_reason} // 'NULL',
			$fenced_sample->{decision_reason} // 'NULL')) if $fenced_sample;

	my $slog = slurp_file($solo->logfile, $off);
	my ($down) = $slog =~ /^(.*pg_autoha: write fence down: .*)$/m;
	ok(defined $down, "$mode restart: log says \"write fence down\"");
	note("solo1: $down") if defined $down;
	my ($fenced_for) = ($down // '') =~ /fenced for ([\d.]+) s/;
	ok(defined $fenced_for && $fenced_for > 0, "$mode restart: it was fenced from its start (" . ($fenced_for // '?') . ' s)');
	my $down_ts = log_ts($down // '');
	my $early = defined $down_ts
	  ? sql($solo, "SELECT string_agg(id || ' at ' || pg_xact_commit_timestamp(xmin), ', ') FROM t110s "
		  . "WHERE id BETWEEN $base AND $base + 999999 AND pg_xact_commit_timestamp(xmin) < '$down_ts'::timestamptz - interval '100 ms'")
	  : 'no fence-down time';
	is($early // '', '', "$mode restart: no write committed before the fence went down ($down_ts)");
	note('first commit after the restart: '
		  . (sql($solo, "SELECT min(pg_xact_commit_timestamp(xmin)) || ' (postmaster started ' || pg_postmaster_start_time() || ')' FROM t110s WHERE id BETWEEN $base AND $base + 999999") // '?'));
	my $i = autoha_node($solo);
	ok($i && !$i->{fenced} && $i->{is_leader}, "$mode restart: autoha_node(): leader, not fenced");
	is(sql($solo, 'SHOW default_transaction_read_only'), 'off', "$mode restart: new sessions are read-write");
	is(sql($solo, 'SHOW autoha.fenced'), 'off', "$mode restart: autoha.fenced shows off");
}

# (c) a crash restart of the same postmaster (a child killed with SIGKILL):
# shared memory is created anew, so the server is fenced again until its
# worker confirms a lease; the lease id died with the old shared memory, so
# the old key must expire first (up to ttl).
{
	note('---- (c) crash restart');
	my $off = -s $solo->logfile;
	my $victim = sql($solo, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'autovacuum launcher'");
	ok($victim, "autovacuum launcher pid $victim");
	kill 'KILL', $victim;
	my $t0 = now_s();
	ok(defined poll_until(sub { slurp_file($solo->logfile, $off) =~ /all server processes terminated; reinitializing/ },
			30, 'the crash restart to begin'),
		'the postmaster reinitializes after the SIGKILL');
	my ($refused, $accepted_after) = (0, undef);
	my $next = 3_000_000;
	my $secs = poll_until(
		sub {
			my $i = $next++;
			my ($ok, $err) = attempt($solo, "INSERT INTO t110s VALUES ($i, 'crash') RETURNING id", $i);
			return 1 if $ok;
			$refused++ if refusal_kind($err) =~ /^(fence|read-only)$/;
			return 0;
		},
		60, 'solo1 to accept a write after the crash restart', 0.02);
	ok(defined $secs, 'writes are accepted again after the crash restart');
	ok($refused > 0, "writes were refused after the crash restart until the lease was confirmed ($refused refused)");
	note(sprintf('FENCE at birth (crash restart): first write accepted %.3f s after the SIGKILL, %d refused before',
			now_s() - $t0, $refused));
	like(slurp_file($solo->logfile, $off), qr/pg_autoha: write fence down/,
		'the log says "write fence down" after the crash restart');
}

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
done_testing();
