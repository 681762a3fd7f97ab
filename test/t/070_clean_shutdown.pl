
# 070_clean_shutdown: the leader shut down cleanly (pg_ctl stop -m fast) hands
# over leadership without needing pg_rewind.  Its worker releases the leader
# key at once, a replica waits for the old leader's shutdown checkpoint before
# it promotes, so the new timeline forks off at or after that checkpoint.  The
# old leader, started again as a standby by hand (automatic rejoin is a later
# issue), is repointed by its worker at the new leader and streams from it.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $ttl     = $AutohaTest::TTL;
my $cluster = cluster_name_for_test();
my $etcd    = start_etcd();
my $nodes   = make_cluster(etcd => $etcd, n => 3, cluster_name => $cluster);
my ($n1, $n2, $n3) = @$nodes;

my ($old) = wait_for_leader($nodes, 30);
ok($old, 'a leader before the shutdown') or BAIL_OUT('no leader');
is($old->name, 'node1', 'node1 leads');
my @survivors = grep { $_ != $old } @$nodes;

sql_ok($old, "CREATE TABLE t070 (id int PRIMARY KEY, src text DEFAULT 'x')");
sql_ok($old, "INSERT INTO t070 (id, src) SELECT g, 'before' FROM generate_series(1, 1000) g");
$old->wait_for_catchup($_) for @survivors;

# ---- clean shutdown of the leader
note('stopping ' . $old->name . ' (fast shutdown)');
my $t_stop = now_s();
$old->stop('fast');
my $stop_secs = now_s() - $t_stop;
note(sprintf('pg_ctl stop -m fast of %s returned after %.2f s', $old->name, $stop_secs));

# ---- time to the first accepted write on a survivor
my ($writer, $write_secs) = first_write(\@survivors, 't070', 60);
ok(defined $write_secs, 'a survivor accepted a write after the clean shutdown')
  or diag("etcd:\n" . etcd_dump($etcd, $cluster));
note(sprintf("FAILOVER clean shutdown: first write accepted by %s %.2f s after the stop began (%.2f s after pg_ctl stop returned)",
		$writer->name, $stop_secs + $write_secs, $write_secs))
  if defined $write_secs;
BAIL_OUT('no failover after a clean shutdown of the leader') unless $writer;

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
my $follow_secs = wait_streaming($writer, [$other], 60);
ok(defined $follow_secs, $other->name . ' streams from the new leader');
note(sprintf('%s streaming from %s %.2f s after the stop began',
		$other->name, $writer->name, now_s() - $t_stop));

# ---- no rewind needed: the old leader's shutdown checkpoint is at or
# before the point where the new timeline forked off
my ($cd_out, $cd_err) = run_command([ 'pg_controldata', $old->data_dir ]);
my ($ckpt)     = $cd_out =~ /^Latest checkpoint location:\s+(\S+)/m;
my ($old_tli)  = $cd_out =~ /^Latest checkpoint's TimeLineID:\s+(\d+)/m;
my ($db_state) = $cd_out =~ /^Database cluster state:\s+(.+?)\s*$/m;
ok(defined $ckpt && defined $old_tli, 'pg_controldata of the old leader read')
  or diag("pg_controldata: $cd_out $cd_err");
is($db_state, 'shut down', 'the old leader was shut down cleanly');
note("old leader: shutdown checkpoint at $ckpt on timeline $old_tli") if defined $ckpt;

# the old leader announced its shutdown in the status key, then released
# the lease: that announcement is what makes the candidates wait for the
# shutdown checkpoint in their stream
my $old_log = slurp_file($old->logfile);
like($old_log, qr/pg_autoha: released lease \d+ \(server shutting down\)/,
	'old leader log: it released its lease on the way down');
unlike($old_log, qr/could not announce the shutdown/, 'old leader log: the shutdown was announced in etcd');

my $new_tli;
ok(defined poll_until(
		sub {
			my $st = autoha_status($writer) or return 0;
			my ($me) = grep { $_->{name} eq $writer->name } @$st;
			$new_tli = $me && $me->{timeline};
			return defined $new_tli && $new_tli > $old_tli;
		},
		30, 'the new leader to publish its new timeline'),
	'the new leader is on a later timeline');
is(sql_ok($writer, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"),
	$new_tli, 'autoha_status() timeline matches the new leader\'s WAL insert timeline');
my $history = sql_ok($writer,
	"SELECT pg_read_file('pg_wal/' || lpad(upper(to_hex($new_tli)), 8, '0') || '.history')");
note("history file of timeline $new_tli:\n$history");
my ($switch) = map { (split /\t/)[1] } grep { (split /\t/)[0] eq $old_tli } split /\n/, $history;
ok(defined $switch && $switch =~ m{^[0-9A-F]+/[0-9A-F]+$}i,
	"the history file has the switch point off timeline $old_tli");
$switch //= '0/0';
$ckpt   //= 'FFFFFFFF/FFFFFFFF';
is(sql_ok($writer, "SELECT '$ckpt'::pg_lsn <= '$switch'::pg_lsn"), 't',
	"old leader's shutdown checkpoint ($ckpt) <= switch point of timeline $new_tli ($switch): no rewind needed");
note(sprintf('switch point %s is %s bytes after the shutdown checkpoint %s',
		$switch, sql_ok($writer, "SELECT '$switch'::pg_lsn - '$ckpt'::pg_lsn"), $ckpt));

# ---- rejoin the old leader by hand, as a standby
my $log_offset = -s $old->logfile;
$old->set_standby_mode;    # an empty standby.signal
ok(-e $old->data_dir . '/standby.signal', 'standby.signal created in the old leader\'s data directory');
my $t_rejoin = now_s();
$old->start;

my $info;
my $repoint_secs = poll_until(
	sub {
		$info = autoha_node($old);
		return $info && $info->{role} eq 'replica' && ($info->{leader} // '') eq $writer->name;
	},
	60, $old->name . ' to be a replica of the new leader');
ok(defined $repoint_secs, $old->name . ': autoha_node() shows role replica and the new leader')
  or diag('autoha_node(): ' . JSON::PP->new->canonical->encode($info // {}));
is(in_recovery($old), 1, $old->name . ' is in recovery');

my $stream_secs = poll_until(
	sub {
		my $r = sql($writer,
			"SELECT state FROM pg_stat_replication WHERE application_name = '" . $old->name . "'");
		return defined $r && $r eq 'streaming';
	},
	60, $old->name . ' to stream from ' . $writer->name);
ok(defined $stream_secs, 'pg_stat_replication on the new leader lists ' . $old->name . ' streaming')
  or diag('pg_stat_replication: '
	  . (sql($writer, 'SELECT application_name, state, client_addr FROM pg_stat_replication') // '?'));
ok(defined wait_streaming($writer, [$old], 30), $old->name . ' streams through its slot on the new leader');
note(sprintf('%s rejoined: replica of %s after %.2f s, streaming after %.2f s (since its start)',
		$old->name, $writer->name, $repoint_secs // -1, now_s() - $t_rejoin));
is(sql($old, 'SELECT received_tli FROM pg_stat_wal_receiver'), $new_tli,
	$old->name . " receives timeline $new_tli");

sql_ok($writer, "INSERT INTO t070 (id, src) VALUES (300000, 'after rejoin')");
ok($old->poll_query_until('postgres', 'SELECT count(*) = 1 FROM t070 WHERE id = 300000'),
	'a row inserted on the new leader appears on ' . $old->name);
is(sql_ok($old, "SELECT count(*) FROM t070 WHERE src = 'before'"), '1000',
	$old->name . ' still has the rows from before the shutdown');
ok(defined wait_streaming($writer, [$other], 30), $other->name . ' still streams from the new leader');

my $log = slurp_file($old->logfile, $log_offset);
unlike($log, qr/forked off/, $old->name . ': no timeline divergence ("forked off") in its log');
unlike($log, qr/is not in this server's history/,
	$old->name . ': no "not in this server\'s history" error from the new leader');

is(find_leader($nodes) && find_leader($nodes)->name, $writer->name, 'still exactly one leader');
is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');

$_->stop('fast') for grep { defined $_->{_pid} } @$nodes;
done_testing();
