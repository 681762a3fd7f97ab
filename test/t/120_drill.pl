
# 120_drill: pg_autoha_drill's argument handling and its audit, against one
# plain server (no etcd, no pg_autoha needed):
#
#  - --help and --version exit 0; an unknown option, a missing value, a bad
#    number, a malformed DSN and an unreachable server exit 2 with a message
#    naming the problem;
#  - a 5 s run at 50 writes/s where nothing fails: every attempted write is
#    acknowledged, none lost, none indeterminate, exit 0, the CSV has samples;
#  - a run whose --fault-cmd deletes five acknowledged rows behind the drill's
#    back: they are reported as lost and the exit status is 1.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

# The binary of this tree if it was built here, else the installed one.
my $drill = "$ENV{TESTDIR}/drill/pg_autoha_drill";
if (!-x $drill)
{
	my $bindir = `pg_config --bindir`;
	chomp $bindir;
	$drill = "$bindir/pg_autoha_drill";
}
plan skip_all => "pg_autoha_drill not built or installed" unless -x $drill;
note "drill: $drill";

# Run the drill; returns (exit status, stdout, stderr).
sub drill
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $drill, @args ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(120));
	return ($? >> 8, $out, $err);
}

# The key=value pairs of the report's last line.
sub summary
{
	my ($out) = @_;
	my ($line) = $out =~ /^drill: (.*)$/m;
	return {} unless defined $line;
	return { map { split /=/, $_, 2 } split / /, $line };
}

# ---------------------------------------------------------------- arguments
my ($rc, $out, $err) = drill('--help');
is($rc, 0, '--help exits 0');
like($out, qr/Usage:.*--dsn CONNINFO.*--fault-cmd/s, '--help prints usage');

($rc, $out) = drill('--version');
is($rc, 0, '--version exits 0');
like($out, qr/^pg_autoha_drill \(pg_autoha\) \d/, '--version prints the version');

($rc, $out, $err) = drill('--dsn', 'dbname=x', '--bogus');
is($rc, 2, 'unknown option exits 2');
like($err, qr/unknown option "--bogus"/, 'unknown option is named');

($rc, $out, $err) = drill('--dsn');
is($rc, 2, 'option without its value exits 2');
like($err, qr/option --dsn needs a value/, 'missing value is named');

($rc, $out, $err) = drill();
is($rc, 2, 'no --dsn exits 2');
like($err, qr/--dsn is required/, 'missing --dsn is named');

($rc, $out, $err) = drill('--dsn', 'dbname=x', '--rate', 'fast');
is($rc, 2, 'non-numeric --rate exits 2');
like($err, qr/invalid value "fast" for --rate/, 'bad --rate is named');

($rc, $out, $err) = drill('--dsn', 'dbname=x', '--table', 'x; DROP TABLE y');
is($rc, 2, 'bad --table exits 2');
like($err, qr/invalid --table/, 'bad --table is named');

($rc, $out, $err) = drill('--dsn', 'host');
is($rc, 2, 'malformed DSN exits 2');
like($err, qr/invalid --dsn: missing "=" after "host"/, 'malformed DSN: libpq\'s reason');

($rc, $out, $err) = drill('--dsn', 'port=notanumber');
is($rc, 2, 'DSN with a non-numeric port exits 2');
like($err, qr/invalid value "notanumber" for port in --dsn/, 'bad port is named');

($rc, $out, $err) = drill('--dsn', 'host=a,b,c port=1,2');
is($rc, 2, 'DSN with mismatched host and port lists exits 2');
like($err, qr/3 hosts but 2 ports/, 'mismatched lists are named');

($rc, $out, $err) = drill('--dsn', 'dbname=x', '--fault-cmd', 'true');
is($rc, 2, '--fault-cmd without --fault-at exits 2');

($rc, $out, $err) = drill('--dsn', 'dbname=x', '--duration', '5', '--fault-at', '7');
is($rc, 2, '--fault-at after the end exits 2');

# ---------------------------------------------------------------- one server
my $node = PostgreSQL::Test::Cluster->new('drill');
$node->init;
$node->start;
my $host = $node->host;
my $port = $node->port;
my $dsn  = "host=$host port=$port dbname=postgres";

# nothing listens there
my $dead = PostgreSQL::Test::Cluster::get_free_port();
($rc, $out, $err) = drill('--dsn', "host=$host port=$dead dbname=postgres",
	'--duration', '1');
is($rc, 2, 'unreachable server exits 2');
like($err, qr/could not connect to a read-write server/, 'unreachable server is named');

# a quiet run where nothing fails
my $csv = "$PostgreSQL::Test::Utils::tmp_check/drill_ok.csv";
($rc, $out, $err) = drill('--dsn', $dsn, '--duration', '5', '--rate', '50',
	'--csv', $csv);
note $out;
note $err if $err ne '';
my $s = summary($out);
is($rc, 0, 'healthy run exits 0');
is($s->{lost}, 0, 'healthy run: nothing lost');
is($s->{indeterminate}, 0, 'healthy run: nothing indeterminate');
is($s->{failed}, 0, 'healthy run: nothing failed');
cmp_ok($s->{attempted} // 0, '>=', 200, 'healthy run: about 250 writes attempted');
is($s->{acknowledged}, $s->{attempted}, 'healthy run: every attempted write acknowledged');
is($s->{nonleader_acks_after_takeover}, 0, 'healthy run: no acks from a non-leader');
is($s->{inflight_acks_after_fault}, 0, 'healthy run: no acks in flight at a fault');
is($s->{two_primaries}, 'no', 'healthy run: never two primaries');
is($node->safe_psql('postgres', 'SELECT count(*) FROM drill_writes'),
	$s->{acknowledged}, 'the table holds exactly the acknowledged writes');

ok(-f $csv, 'CSV written');
my @lines = split /\n/, slurp_file($csv);
is($lines[0], 't_seconds,server,role,rows', 'CSV header');
cmp_ok(scalar(@lines), '>=', 30, 'CSV: about ten samples a second');
like($lines[-1], qr/^\d+\.\d{3},\Q$host:$port\E,primary,\d+$/,
	'CSV sample: time, server, role, rows');
my ($last_rows) = $lines[-1] =~ /,(\d+)$/;
cmp_ok($last_rows, '>=', 200, 'CSV: the rows grow to the run\'s writes');

# rows deleted behind the drill's back at second 2 (the newest five, all of
# this run and all acknowledged by then: a DELETE sees only committed rows)
my $delete =
  "psql -X -h '$host' -p $port -d postgres -c "
  . "'DELETE FROM drill_lost WHERE id IN (SELECT id FROM drill_lost ORDER BY id DESC LIMIT 5)'";
($rc, $out, $err) = drill('--dsn', $dsn, '--duration', '4', '--rate', '50',
	'--table', 'drill_lost', '--fault-at', '2', '--fault-cmd', $delete, '--quiet');
note $out;
note $err if $err ne '';
$s = summary($out);
is($rc, 1, 'run with deleted rows exits 1');
cmp_ok($s->{lost} // 0, '>=', 5, 'the deleted acknowledged writes are reported lost');
is($s->{fault_status}, 'exit_0', 'the fault command\'s exit status is reported');
like($out, qr/LOST ACKNOWLEDGED\s+\d+/, 'the human-readable report says so too');
like($out, qr/^    id \d+ acknowledged by \Q$host:$port\E at [\d.]+ s \([-+]\d+ ms from the fault\)$/m,
	'the report lists a lost write with its server and time');

# a fault command that fails is reported, and is not a lost write
($rc, $out, $err) = drill('--dsn', $dsn, '--duration', '1.5', '--rate', '20',
	'--fault-at', '0.5', '--fault-cmd', 'exit 3', '--quiet');
$s = summary($out);
is($rc, 0, 'failing fault command, nothing lost: exit 0');
is($s->{fault_status}, 'exit_3', 'failing fault command: its status is reported');

$node->stop;
done_testing();
