
# AutohaTest.pm — helpers for the multi-node TAP tests of pg_autoha.
#
# Every test file gets its own etcd (free ports, data dir under tmp_check) and
# its own autoha.cluster_name, so tests never share etcd state.  Every process
# started here (etcd) is stopped by PID in an END block and on SIGINT/SIGTERM/
# SIGHUP; PostgreSQL servers are stopped by PostgreSQL::Test::Cluster's own END
# block.  Children of a postmaster we killed with SIGKILL that fail to exit on
# their own (they should: postmaster death) are reported and killed by PID.
# The same END block sends SIGCONT to what a test stopped with stop_pids()
# and SIGTERM to its background psqls (bg_psql()) still running.
#
# Usage (see test/t/*.pl):
#   my $etcd  = AutohaTest::start_etcd();
#   my $nodes = AutohaTest::make_cluster(etcd => $etcd, n => 3);
#   my ($leader, $secs) = AutohaTest::wait_for_leader($nodes, 60);

package AutohaTest;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Basename qw(basename);
use IPC::Run;
use JSON::PP;
use MIME::Base64 ();
use POSIX ();
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  start_etcd etcd_get etcd_get_prefix etcd_dump ckey
  autoha_conf make_cluster new_replica
  sql sql_ok autoha_node autoha_status in_recovery
  find_leader wait_for_leader wait_for_members wait_streaming wait_following
  kill9_node kill9_nodes restart_killed_node poll_until now_s lsn_int cluster_name_for_test
  first_write alive set_conf_all
  sync_key sync_key_text sync_names sync_list ssn dump_sync_state
  write_rows has_all_acked bg_psql bg_done
  stop_pids cont_pids stop_every_process proc_states
);

# Timing used by all tests (seconds / milliseconds).
our $TTL       = 4;
our $LOOP_WAIT = 500;
our $NAMESPACE = '/service';

my $json = JSON::PP->new->utf8->allow_nonref->allow_bignum;
# for messages: sorted keys
my $json_out = JSON::PP->new->utf8->allow_nonref->canonical;

my @etcds;         # AutohaTest::Etcd objects started by this process
my @orphans;       # children of postmasters we SIGKILLed
my @stopped;       # PIDs SIGSTOPped by stop_pids() and not yet continued
my @bg;            # background psqls started by bg_psql()
my $bg_seq = 0;
our @several_leaders;    # every time find_leader saw more than one leader
my $owner_pid = $$;

sub now_s { return Time::HiRes::time(); }

# Name of the current test file without extension, e.g. "010_bootstrap".
sub test_name
{
	my $n = basename($0);
	$n =~ s/\.[^.]*$//;
	$n =~ s/[^A-Za-z0-9_]/_/g;
	return $n;
}

# A cluster name (etcd scope) unique to this test file.
sub cluster_name_for_test
{
	my ($suffix) = @_;
	my $n = 'autoha_' . test_name();
	$n .= "_$suffix" if defined $suffix;
	return $n;
}

# etcd key of the cluster: ckey('regress', 'leader') -> /service/regress/leader
sub ckey
{
	my ($cluster, @rest) = @_;
	return join('/', $NAMESPACE, $cluster, @rest);
}

# "16/B374D848" -> integer
sub lsn_int
{
	my ($lsn) = @_;
	return undef unless defined $lsn && $lsn =~ m{^([0-9A-Fa-f]+)/([0-9A-Fa-f]+)$};
	return hex($1) * 4294967296 + hex($2);
}

# first_write(\@nodes, $table, $timeout): insert probe rows ('probe', ids
# from 100000) into $table(id, src) on each node in turn until one commits;
# returns ($node, seconds) or (undef, undef) after $timeout.
sub first_write
{
	my ($nodes, $table, $timeout) = @_;
	my ($writer, $next_id) = (undef, 100000);
	my $secs = poll_until(
		sub {
			foreach my $n (@$nodes)
			{
				my $id = $next_id++;
				my $r = sql($n, "INSERT INTO $table (id, src) VALUES ($id, 'probe') RETURNING id",
					timeout => 3);
				if (defined $r && $r eq $id)
				{
					$writer = $n;
					return 1;
				}
			}
			return 0;
		},
		$timeout, 'a write to be accepted', 0.05);
	return ($writer, $secs);
}

# Run $code every $interval seconds until it returns true or $timeout seconds
# pass.  Exceptions count as "not yet" (the last one is reported).  Returns the
# elapsed seconds (true, at least 0.001) on success, undef on timeout.
sub poll_until
{
	my ($code, $timeout, $what, $interval) = @_;
	$interval //= 0.2;
	my $t0 = now_s();
	my $last_err;
	while (1)
	{
		my $ok = eval { $code->() };
		if ($@) { $last_err = $@; $ok = 0; }
		my $elapsed = now_s() - $t0;
		if ($ok)
		{
			return $elapsed > 0.001 ? $elapsed : 0.001;
		}
		if ($elapsed > $timeout)
		{
			diag(sprintf("timed out after %.1f s waiting for %s%s",
					$elapsed, $what // 'condition',
					defined $last_err ? " (last error: $last_err)" : ''));
			return undef;
		}
		usleep(int($interval * 1_000_000));
	}
}

############################################################################
# etcd

{

	package AutohaTest::Etcd;

	use strict;
	use warnings;
	use Carp;
	use POSIX ();
	use Time::HiRes qw(usleep);
	use Test::More;

	sub new
	{
		my ($class, %p) = @_;
		my $name = $p{name} // 'etcd';
		my $base = AutohaTest::test_name() . "_$name";
		my $self = bless {
			name        => $name,
			client_port => PostgreSQL::Test::Cluster::get_free_port(),
			peer_port   => PostgreSQL::Test::Cluster::get_free_port(),
			datadir     => "$PostgreSQL::Test::Utils::tmp_check/$base.etcd",
			logfile     => "$PostgreSQL::Test::Utils::log_path/$base.log",
			pid         => undef,
		}, $class;
		return $self;
	}

	sub port     { return $_[0]->{client_port}; }
	sub endpoint { return "http://127.0.0.1:$_[0]->{client_port}"; }
	sub pid      { return $_[0]->{pid}; }
	sub datadir  { return $_[0]->{datadir}; }
	sub logfile  { return $_[0]->{logfile}; }

	# Start (or restart, on the same data dir and ports) and wait until healthy.
	sub start
	{
		my ($self, %p) = @_;
		croak "etcd $self->{name} already running (pid $self->{pid})"
		  if defined $self->{pid};
		my $cp   = $self->{client_port};
		my $pp   = $self->{peer_port};
		my $name = $self->{name};
		my @cmd  = (
			'etcd',
			'--name'                        => $name,
			'--data-dir'                    => $self->{datadir},
			'--listen-client-urls'          => "http://127.0.0.1:$cp",
			'--advertise-client-urls'       => "http://127.0.0.1:$cp",
			'--listen-peer-urls'            => "http://127.0.0.1:$pp",
			'--initial-advertise-peer-urls' => "http://127.0.0.1:$pp",
			'--initial-cluster'             => "$name=http://127.0.0.1:$pp",
			'--initial-cluster-state'       => 'new',
			'--initial-cluster-token'       => "autoha-test-$cp");

		open(my $log, '>>', $self->{logfile})
		  or croak "cannot open $self->{logfile}: $!";
		print $log "\n### " . localtime() . " starting: @cmd\n";
		close $log;

		my $pid = fork();
		croak "fork failed: $!" unless defined $pid;
		if ($pid == 0)
		{
			# child: no END blocks, no Test::More state
			delete $ENV{$_} for grep { /^ETCD/ } keys %ENV;
			open(STDIN, '<', '/dev/null');
			open(STDOUT, '>>', $self->{logfile}) or POSIX::_exit(127);
			open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
			{ no warnings "exec"; exec { $cmd[0] } @cmd; }
			POSIX::_exit(127);
		}
		$self->{pid} = $pid;
		note("etcd $name started: pid $pid, endpoint " . $self->endpoint);

		my $secs = AutohaTest::poll_until(
			sub {
				my $r = waitpid($pid, POSIX::WNOHANG());
				if ($r == $pid)
				{
					$self->{pid} = undef;
					die "etcd exited early with status $?\n";
				}
				return $self->healthy;
			},
			$p{timeout} // 60,
			"etcd $name to become healthy",
			0.2);
		if (!defined $secs)
		{
			diag("etcd log:\n" . PostgreSQL::Test::Utils::slurp_file($self->{logfile}));
			BAIL_OUT("etcd $name did not start");
		}
		note(sprintf("etcd %s healthy after %.2f s", $name, $secs));
		return $self;
	}

	sub healthy
	{
		my ($self) = @_;
		my ($ok) = AutohaTest::etcdctl($self, 5, 'endpoint', 'health');
		return $ok;
	}

	# Stop by PID (signal TERM by default, KILL if asked) and reap.
	sub stop
	{
		my ($self, $sig) = @_;
		$sig //= 'TERM';
		my $pid = $self->{pid};
		return unless defined $pid;
		note("stopping etcd $self->{name} (pid $pid) with SIG$sig");
		kill $sig, $pid;
		my $t0 = Time::HiRes::time();
		while (1)
		{
			my $r = waitpid($pid, POSIX::WNOHANG());
			last if $r == $pid || $r == -1;
			if (Time::HiRes::time() - $t0 > 20)
			{
				diag("etcd pid $pid did not exit on SIG$sig, sending SIGKILL");
				kill 'KILL', $pid;
				waitpid($pid, 0);
				last;
			}
			usleep(50_000);
		}
		$self->{pid} = undef;
		return;
	}

	sub kill9 { my ($self) = @_; return $self->stop('KILL'); }
}

# start_etcd(name => 'etcd') -> AutohaTest::Etcd, started and healthy.
sub start_etcd
{
	my (%p) = @_;
	my $e = AutohaTest::Etcd->new(%p);
	push @etcds, $e;
	$e->start(%p);
	return $e;
}

# etcdctl($etcd, $timeout, @args) -> ($ok, $stdout, $stderr)
sub etcdctl
{
	my ($etcd, $timeout, @args) = @_;
	my ($out, $err) = ('', '');
	local $ENV{ETCDCTL_API} = 3;
	my @cmd = (
		'etcdctl', '--endpoints=' . $etcd->endpoint,
		'--dial-timeout=2s', '--command-timeout=' . ($timeout - 1) . 's',
		@args);
	my $ok = eval {
		IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout($timeout));
	};
	if ($@) { $err .= " [$@]"; $ok = 0; }
	return ($ok ? 1 : 0, $out, $err);
}

# Decoded range response of etcdctl -w json; croaks when etcdctl fails.
sub _etcd_range
{
	my ($etcd, $key, $prefix) = @_;
	my @args = ('get', $key, '-w', 'json');
	push @args, '--prefix' if $prefix;
	my ($ok, $out, $err) = etcdctl($etcd, 10, @args);
	croak "etcdctl get $key failed: $err" unless $ok;
	my $r = $json->decode($out);
	my %kv;
	foreach my $kv (@{ $r->{kvs} || [] })
	{
		my $k = MIME::Base64::decode_base64($kv->{key});
		my $v = defined $kv->{value} ? MIME::Base64::decode_base64($kv->{value}) : '';
		$kv{$k} = $v;
	}
	return \%kv;
}

# Value of one key, undef when absent.  Dies when etcd cannot be read.
sub etcd_get
{
	my ($etcd, $key) = @_;
	my $kv = _etcd_range($etcd, $key, 0);
	return $kv->{$key};
}

# { key => value } of every key under the prefix.
sub etcd_get_prefix
{
	my ($etcd, $prefix) = @_;
	return _etcd_range($etcd, $prefix, 1);
}

# All keys of a cluster as text, for diagnostics.
sub etcd_dump
{
	my ($etcd, $cluster) = @_;
	my $kv = eval { etcd_get_prefix($etcd, ckey($cluster) . '/') };
	return "etcd unreadable: $@" unless $kv;
	return join('', map { "  $_ = $kv->{$_}\n" } sort keys %$kv);
}

############################################################################
# PostgreSQL nodes

# Append the pg_autoha settings (and what streaming replication needs) to a
# node's postgresql.conf.  Options:
#   etcd => $etcd (or endpoints => 'http://...'), cluster_name => ...,
#   node_name => (default $node->name), extension => 1 (0: don't preload),
#   ttl, loop_wait, conf => { 'autoha.nofailover' => 'on', ... } extra lines
sub autoha_conf
{
	my ($node, %p) = @_;
	my $extension = $p{extension} // 1;
	my $endpoints = $p{endpoints} // $p{etcd}->endpoint;
	my $cluster   = $p{cluster_name} // cluster_name_for_test();
	my $name      = $p{node_name} // $node->name;
	my $port      = $node->port;
	my $user      = $p{user} // (getpwuid($<))[0];
	my $ttl       = $p{ttl} // $TTL;
	my $loop_wait = $p{loop_wait} // $LOOP_WAIT;

	my $conf = "\n# Added by AutohaTest.pm\n";
	$conf .= "shared_preload_libraries = 'pg_autoha'\n" if $extension;
	$conf .= <<"EOC";
listen_addresses = '127.0.0.1'
wal_log_hints = on
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_keep_size = '32MB'
max_connections = 25
shared_buffers = '16MB'
restart_after_crash = on
log_line_prefix = '%m [%p] %q%a '
autoha.etcd_endpoints = '$endpoints'
autoha.namespace = '$NAMESPACE'
autoha.cluster_name = '$cluster'
autoha.node_name = '$name'
autoha.connect_address = '127.0.0.1:$port'
autoha.replication_conninfo = 'user=$user'
autoha.ttl = $ttl
autoha.loop_wait = $loop_wait
EOC
	foreach my $k (sort keys %{ $p{conf} || {} })
	{
		$conf .= "$k = $p{conf}{$k}\n";
	}
	$node->append_conf('postgresql.conf', $conf);
	$node->{_autoha} = { cluster_name => $cluster, node_name => $name, extension => $extension };
	return;
}

# Run SQL on a node without dying; returns stdout (chomped) or undef on any
# error or timeout.  In list context: ($stdout_or_undef, $stderr).
sub sql
{
	my ($node, $query, %p) = @_;
	my $timed_out = 0;
	my ($ret, $out, $err) = eval {
		$node->psql($p{dbname} // 'postgres', $query,
			timeout      => $p{timeout} // 15,
			timed_out    => \$timed_out,
			extra_params => $p{extra_params} // []);
	};
	if ($@) { $err = "$@"; $ret = -1; }
	$err //= '';
	$err .= ' [timed out]' if $timed_out;
	my $res = (defined $ret && $ret == 0 && !$timed_out) ? $out : undef;
	return wantarray ? ($res, $err) : $res;
}

# Like sql(), but dies with the error.
sub sql_ok
{
	my ($node, $query, %p) = @_;
	my ($out, $err) = sql($node, $query, %p);
	croak "query failed on " . $node->name . ": $query: $err" unless defined $out;
	return $out;
}

# autoha_node() as a hashref (undef if the query fails).
sub autoha_node
{
	my ($node) = @_;
	my $out = sql($node, 'SELECT row_to_json(n) FROM autoha_node() n', timeout => 10);
	return undef unless defined $out && $out ne '';
	return $json->decode($out);
}

# autoha_status() as an arrayref of hashrefs sorted by name (undef on error).
sub autoha_status
{
	my ($node) = @_;
	my $out = sql($node,
		"SELECT coalesce(json_agg(s ORDER BY s.name), '[]') FROM autoha_status() s",
		timeout => 10);
	return undef unless defined $out && $out ne '';
	return $json->decode($out);
}

# 1 / 0 / undef (unreachable)
sub in_recovery
{
	my ($node) = @_;
	my $out = sql($node, 'SELECT pg_is_in_recovery()', timeout => 10);
	return undef unless defined $out;
	return $out eq 't' ? 1 : 0;
}

# Is $node running, as far as the test knows?  (Cluster.pm forgets the
# postmaster's PID when it stops or kills the server.)
sub alive { my ($node) = @_; return defined $node->{_pid}; }

# The running node that is out of recovery and whose worker says is_leader
# (with the extension), or just out of recovery (without).  Dies if there
# are several.  undef if none.
sub find_leader
{
	my ($nodes) = @_;
	my @l;
	foreach my $n (@$nodes)
	{
		next unless alive($n);
		my $rec = in_recovery($n);
		next unless defined $rec && !$rec;
		if (!$n->{_autoha} || $n->{_autoha}{extension})
		{
			my $info = autoha_node($n);
			next unless $info && $info->{is_leader};
		}
		push @l, $n;
	}
	if (@l > 1)
	{
		my $msg = sprintf("%.3f several leaders: %s", now_s(), join(", ", map { $_->name } @l));
		push @several_leaders, $msg;
		diag($msg);
	}
	die "several leaders: " . join(', ', map { $_->name } @l) . "\n" if @l > 1;
	return $l[0];
}

# Wait until exactly one leader is found; returns ($node, $seconds) or ().
sub wait_for_leader
{
	my ($nodes, $timeout) = @_;
	my $leader;
	my $secs = poll_until(sub { $leader = find_leader($nodes); return defined $leader },
		$timeout // 60, 'a leader among ' . join(',', map { $_->name } @$nodes));
	return defined $secs ? ($leader, $secs) : ();
}

# Wait until autoha_status() on every given node lists exactly the expected
# member names.  Returns seconds or undef.
sub wait_for_members
{
	my ($nodes, $names, $timeout) = @_;
	my $want = join(',', sort @$names);
	my %seen;
	my $secs = poll_until(
		sub {
			foreach my $n (@$nodes)
			{
				my $st = autoha_status($n) or return 0;
				$seen{ $n->name } = join(',', sort map { $_->{name} } @$st);
				return 0 unless $seen{ $n->name } eq $want;
			}
			return 1;
		},
		$timeout // 60,
		"members [$want] in autoha_status() of " . join(',', map { $_->name } @$nodes));
	diag("autoha_status() member lists seen: "
		  . join('; ', map { "$_: $seen{$_}" } sort keys %seen))
	  unless defined $secs;
	return $secs;
}

# Wait until pg_stat_replication on $leader shows every replica streaming
# (application_name = node name); with slots => 1 (the default) also over
# TCP (client_addr 127.0.0.1) through the slot named after the replica.
# Returns seconds or undef.
sub wait_streaming
{
	my ($leader, $replicas, $timeout, %p) = @_;
	my $slots = $p{slots} // 1;
	my $in = join(',', map { "'" . $_->name . "'" } @$replicas);
	my $n  = scalar @$replicas;
	my $last;
	my $secs = poll_until(
		sub {
			$last = sql($leader,
				"SELECT count(*) FROM pg_stat_replication r WHERE r.state = 'streaming' AND r.application_name IN ($in)"
				  . ($slots
					? " AND host(r.client_addr) = '127.0.0.1' AND EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_name = r.application_name)"
					: ''));
			return defined $last && $last == $n;
		},
		$timeout // 60,
		"replicas ($in) streaming from " . $leader->name);
	if (!defined $secs)
	{
		diag("pg_stat_replication on " . $leader->name . ":\n"
			  . (sql($leader, 'SELECT r.application_name, r.state, r.client_addr, r.sync_state, s.slot_name FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid') // '?'));
	}
	return $secs;
}

# Wait until every replica in @$replicas really follows $leader: in recovery,
# its WAL receiver streams the leader's current timeline, it has replayed
# what the leader had written when the wait began, and the leader sees it
# streaming through its slot.  (A replica whose WAL went past the fork point
# connects and "streams" its old timeline for a moment before it is rewound:
# that must not count.)  Returns seconds or undef.
sub wait_following
{
	my ($leader, $replicas, $timeout) = @_;
	my $t0 = now_s();
	my ($target, $tli, %seen);
	my $secs = poll_until(
		sub {
			if (!defined $target)
			{
				my $r = sql($leader,
					"SELECT pg_current_wal_lsn() || ' ' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)",
					timeout => 5) // '';
				return 0 unless $r =~ m{^([0-9A-F]+/[0-9A-F]+) ([0-9A-F]{8})$};
				($target, $tli) = ($1, hex($2));
			}
			my $all = 1;
			foreach my $n (@$replicas)
			{
				my $r = sql($n,
					"SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= '$target', "
					  . "(SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming')",
					timeout => 5);
				$seen{ $n->name } = $r // 'unreachable';
				$all = 0 unless defined $r && $r eq "t|t|$tli";
			}
			return $all;
		},
		$timeout,
		'replicas ' . join(',', map { $_->name } @$replicas) . ' to follow ' . $leader->name . ' on its timeline',
		0.2);
	if (!defined $secs)
	{
		diag(sprintf('leader %s at %s on timeline %s; replicas (in recovery | replayed it | receiver timeline): %s',
				$leader->name, $target // '?', $tli // '?',
				join('; ', map { "$_: $seen{$_}" } sort keys %seen)));
		return undef;
	}
	my $left = $timeout - (now_s() - $t0);
	return undef unless defined wait_streaming($leader, $replicas, $left > 10 ? $left : 10);
	return now_s() - $t0;
}

# Direct children of a PID, from /proc.
sub _children
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $d, '/proc') or return ();
	foreach my $p (grep { /^\d+$/ } readdir($d))
	{
		open(my $fh, '<', "/proc/$p/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/;
		push @kids, $p if $1 == $ppid;
	}
	closedir $d;
	return @kids;
}

sub _pid_alive
{
	my ($pid) = @_;
	return 0 unless kill(0, $pid);
	# a zombie is as good as gone
	if (open(my $fh, '<', "/proc/$pid/stat"))
	{
		my $stat = <$fh>;
		close $fh;
		return 0 if defined $stat && $stat =~ /\)\s+Z\s/;
	}
	return 1;
}

# kill -9 several nodes at the same instant: one kill() call for all their
# postmasters.  Killing them one after the other would leave the survivors a
# window (each postmaster is waited for) in which the leader sees one node
# gone and another still streaming, and reacts to that instead of to all of
# them gone.  Like Cluster.pm's kill9, it forgets the PIDs so that teardown
# leaves them alone.  Returns one arrayref per node of the PIDs of its
# postmaster's children at the time of the kill; they must exit on their own
# (postmaster death); any still alive at the end of the test are reported
# and killed.
sub kill9_nodes
{
	my (@nodes) = @_;
	my @pids;
	my @kids_per_node;
	for my $node (@nodes)
	{
		my $pid = $node->{_pid};
		croak "node " . $node->name . " is not running" unless defined $pid;
		my @kids = _children($pid);
		note("kill -9 of " . $node->name . " postmaster $pid (children: @kids)");
		push @pids,          $pid;
		push @kids_per_node, \@kids;
		push @orphans,       @kids;
	}
	kill('KILL', @pids);
	$_->{_pid} = undef for @nodes;
	poll_until(sub { !grep { _pid_alive($_) } @pids }, 10, "postmaster(s) @pids to die", 0.05);
	return @kids_per_node;
}

# kill -9 one node: returns the PIDs of its postmaster's children
sub kill9_node
{
	my ($node) = @_;
	my ($kids) = kill9_nodes($node);
	return @$kids;
}

# Start again a node whose postmaster was killed with kill9_node.  Its
# children must have exited; the dead postmaster itself can stay a zombie
# until init reaps it (slowly, on some machines), and PostgreSQL then takes
# its postmaster.pid for a live server's: that lock file is stale, remove
# it.  Returns seconds until started, or undef.
sub restart_killed_node
{
	my ($node, $kids, $timeout) = @_;
	my $pidfile = $node->data_dir . '/postmaster.pid';
	wait_pids_gone($kids, $timeout // 30);
	if (open(my $fh, '<', $pidfile))
	{
		my $pid = <$fh>;
		close $fh;
		chomp $pid if defined $pid;
		if (defined $pid && $pid =~ /^\d+$/ && !_pid_alive($pid))
		{
			note("removing the stale postmaster.pid of dead postmaster $pid");
			unlink $pidfile;
		}
	}
	return poll_until(
		sub {
			$node->{_pid} = undef;
			return $node->start(fail_ok => 1);
		},
		$timeout // 30, $node->name . ' to start again', 0.5);
}

# Wait until all given PIDs are gone; returns seconds or undef.
sub wait_pids_gone
{
	my ($pids, $timeout) = @_;
	return poll_until(sub { !grep { _pid_alive($_) } @$pids },
		$timeout, 'processes ' . join(',', @$pids) . ' to exit', 0.1);
}

# Create and start a replica of $primary from backup $backup.
sub new_replica
{
	my ($primary, $backup, $name, %p) = @_;
	my $r = PostgreSQL::Test::Cluster->new($name);
	$r->init_from_backup($primary, $backup, has_streaming => 1);
	autoha_conf($r, %p, node_name => $name);
	if (!($p{extension} // 1))
	{
		# Without the worker, nothing sets application_name: do it here.
		my $cs = $primary->connstr;
		$r->append_conf('postgresql.conf',
			"primary_conninfo = '$cs application_name=$name'\n");
	}
	$r->start;
	return $r;
}

# Build a streaming cluster of n servers: node1 primary, node2..n replicas.
# Options: etcd, n (3), cluster_name, extension (1), timeout (90),
# conf => {...} for every node, node_conf => { node2 => {...} }.
# Returns an arrayref of nodes (node1 first).  BAIL_OUTs when the cluster
# does not come up: nothing else in the test can be meaningful then.
sub make_cluster
{
	my (%p) = @_;
	my $n         = $p{n} // 3;
	my $extension = $p{extension} // 1;
	my $cluster   = $p{cluster_name} // cluster_name_for_test();
	my $timeout   = $p{timeout} // 90;
	my $etcd      = $p{etcd};
	my $prefix    = $p{prefix} // 'node';
	my %common    = (
		etcd         => $etcd,
		cluster_name => $cluster,
		extension    => $extension,
		(map { $_ => $p{$_} } grep { exists $p{$_} } qw(ttl loop_wait)));
	my $conf_for = sub {
		my ($name) = @_;
		return { %{ $p{conf} || {} }, %{ ($p{node_conf} || {})->{$name} || {} } };
	};

	my $t0 = now_s();
	my $primary = PostgreSQL::Test::Cluster->new("${prefix}1");
	$primary->init(allows_streaming => 1);
	autoha_conf($primary, %common, conf => $conf_for->("${prefix}1"));
	$primary->start;

	if ($extension)
	{
		# The primary is fenced until its worker holds the lease: wait for
		# the leader key, then create the extension (retrying while fenced).
		my $lk = ckey($cluster, 'leader');
		defined poll_until(sub { (etcd_get($etcd, $lk) // '') eq $primary->name },
			$timeout, "leader key $lk = " . $primary->name)
		  or BAIL_OUT("primary never took the leader key; etcd:\n" . etcd_dump($etcd, $cluster));
		my $err;
		defined poll_until(
			sub {
				my $r;
				($r, $err) = sql($primary, 'CREATE EXTENSION IF NOT EXISTS pg_autoha');
				return defined $r;
			},
			$timeout, 'CREATE EXTENSION pg_autoha')
		  or BAIL_OUT("CREATE EXTENSION failed: $err");
		defined poll_until(sub { my $i = autoha_node($primary); $i && $i->{is_leader} },
			$timeout, 'autoha_node().is_leader on the primary')
		  or BAIL_OUT('primary never reported is_leader');
	}
	$primary->backup('autoha_base');

	my @nodes = ($primary);
	for my $i (2 .. $n)
	{
		my $name = "$prefix$i";
		push @nodes,
		  new_replica($primary, 'autoha_base', $name, %common,
			conf => $conf_for->($name));
	}
	my @replicas = @nodes[ 1 .. $#nodes ];

	if ($extension)
	{
		defined wait_for_members(\@nodes, [ map { $_->name } @nodes ], $timeout)
		  or BAIL_OUT("members never all visible; etcd:\n" . etcd_dump($etcd, $cluster));
	}
	if (@replicas)
	{
		defined wait_streaming($primary, \@replicas, $timeout, slots => $extension)
		  or BAIL_OUT('replicas never all streaming from ' . $primary->name);
	}
	note(sprintf("cluster %s of %d servers ready in %.1f s", $cluster, $n, now_s() - $t0));
	return \@nodes;
}

# Append settings (name => value, written as given) to postgresql.conf of
# every node in @$nodes and reload the running ones.
sub set_conf_all
{
	my ($nodes, %kv) = @_;
	my $text = join('', map { "$_ = $kv{$_}\n" } sort keys %kv);
	foreach my $n (@$nodes)
	{
		$n->append_conf('postgresql.conf', $text);
		sql_ok($n, 'SELECT pg_reload_conf()') if alive($n);
	}
	return;
}

############################################################################
# Synchronous mode: the "sync" key and synchronous_standby_names

# The "sync" key of $cluster decoded ({leader, sync_standby}); { _raw => text }
# when it is not a JSON object; undef when absent.  Dies when etcd cannot be
# read.
sub sync_key
{
	my ($etcd, $cluster) = @_;
	my $v = etcd_get($etcd, ckey($cluster, 'sync'));
	return undef unless defined $v;
	my $d = eval { $json->decode($v) };
	return ref $d eq 'HASH' ? $d : { _raw => $v };
}

# The "sync" key of $cluster as stored, for messages: 'absent' when there is
# none or etcd cannot be read.
sub sync_key_text
{
	my ($etcd, $cluster) = @_;
	my $v = eval { etcd_get($etcd, ckey($cluster, 'sync')) };
	return $v // 'absent';
}

# The standbys a decoded sync key lists, in the key's order; () for none or
# no key.
sub sync_names
{
	my ($k) = @_;
	return () unless $k && defined $k->{sync_standby} && $k->{sync_standby} ne '';
	return split /\s*,\s*/, $k->{sync_standby};
}

# The standbys a decoded sync key lists, as a sorted "a,b" string ('' for
# none); undef when there is no key.
sub sync_list
{
	my ($k) = @_;
	return undef unless $k;
	my @names = sync_names($k);
	return join(',', sort @names);
}

# SHOW synchronous_standby_names on $node; undef when it does not answer.
sub ssn
{
	my ($node) = @_;
	return sql($node, 'SHOW synchronous_standby_names', timeout => 10);
}

# Notes for a failure ($what): the keys of $cluster in etcd, and for every
# running node of @$nodes its autoha_node(), its synchronous_standby_names
# and, on a primary, pg_stat_replication.
sub dump_sync_state
{
	my ($etcd, $cluster, $nodes, $what) = @_;
	diag("state after failure ($what):\netcd:\n" . etcd_dump($etcd, $cluster));
	foreach my $n (@$nodes)
	{
		unless (alive($n)) { diag($n->name . ': not running'); next; }
		my $i = autoha_node($n);
		diag($n->name . ' autoha_node(): ' . ($i ? $json_out->encode($i) : 'unavailable'));
		diag($n->name . ' synchronous_standby_names: ' . (ssn($n) // '?'));
		if ((in_recovery($n) // 1) == 0)
		{
			diag($n->name . " pg_stat_replication:\n"
				  . (sql($n, 'SELECT application_name, state, sync_state, flush_lsn FROM pg_stat_replication') // '?'));
		}
	}
	return;
}

############################################################################
# Acknowledged rows

# Insert rows $from .. $to into $table(id, src) on $node, one transaction
# each, src = $src; records every acknowledged id in %$acked (id => src)
# and checks (one test) that all were acknowledged.  Returns the ids.
sub write_rows
{
	my ($node, $table, $acked, $from, $to, $src) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $script = join('', map { "INSERT INTO $table (id, src) VALUES ($_, '$src') RETURNING id;\n" } $from .. $to);
	my $timed_out = 0;
	my ($ret, $out, $err) = $node->psql('postgres', $script, timeout => 60, timed_out => \$timed_out);
	$err = ($err // '') . ' [timed out]' if $timed_out;
	my @ids = grep { /^\d+$/ } split /\n/, ($out // '');
	$acked->{$_} = $src foreach @ids;
	my $n = $to - $from + 1;
	is(scalar @ids, $n, "$n writes ($src) acknowledged by " . $node->name) or diag("psql: $err");
	return @ids;
}

# Check (one test) that every id of %$acked is in $table on $node, polling
# for up to $timeout s (30): a replica may still replay.  Returns seconds or
# undef.
sub has_all_acked
{
	my ($node, $table, $acked, $timeout) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my @ids = sort { $a <=> $b } keys %$acked;
	my $list = '{' . join(',', @ids) . '}';
	my $want = scalar @ids;
	my $got;
	my $ok = poll_until(
		sub {
			$got = sql($node, "SELECT count(*) FROM $table WHERE id = ANY('$list'::int[])");
			return defined $got && $got == $want;
		},
		$timeout // 30, "every acknowledged row on " . $node->name);
	ok(defined $ok, "all $want acknowledged rows are on " . $node->name)
	  or diag("found " . ($got // 'undef') . " of $want");
	return $ok;
}

############################################################################
# Background psqls and stopped processes (both cleaned up by the END block)

# A psql -c of $query on $node in the background (fork + exec, so only psql
# runs in the child); stdout and stderr go to files under tmp_check.
# Returns a handle for bg_done(); one still running at the end of the test
# gets SIGTERM.
sub bg_psql
{
	my ($node, $query) = @_;
	my $base = "$PostgreSQL::Test::Utils::tmp_check/bg_" . ++$bg_seq;
	my @cmd = ('psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', '-c', $query);
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>', "$base.out") or POSIX::_exit(126);
		open(STDERR, '>', "$base.err") or POSIX::_exit(126);
		{ no warnings 'exec'; exec { $cmd[0] } @cmd; }
		POSIX::_exit(127);
	}
	my $h = { pid => $pid, base => $base, t0 => now_s(), query => $query };
	push @bg, $h;
	note("background psql $pid on " . $node->name . ": $query");
	return $h;
}

# Has the background psql of handle $h exited?  Returns 1 or 0; once it has,
# sets in $h: rc (exit status), out (stdout, chomped), err (stderr), t_end,
# secs (its run time).
sub bg_done
{
	my ($h) = @_;
	return 1 if defined $h->{rc};
	my $r = waitpid($h->{pid}, POSIX::WNOHANG());
	return 0 unless $r == $h->{pid};
	$h->{t_end} = now_s();
	$h->{secs}  = $h->{t_end} - $h->{t0};
	$h->{rc}    = $? >> 8;
	$h->{out}   = slurp_file("$h->{base}.out");
	$h->{err}   = slurp_file("$h->{base}.err");
	chomp $h->{out};
	return 1;
}

# SIGSTOP the given PIDs; the END block sends them SIGCONT whatever happens,
# unless cont_pids() did.
sub stop_pids
{
	my (@pids) = @_;
	kill 'STOP', @pids;
	push @stopped, @pids;
	return;
}

# SIGCONT the given PIDs and forget them (see stop_pids()).
sub cont_pids
{
	my (@pids) = @_;
	my %cont = map { $_ => 1 } @pids;
	kill 'CONT', @pids;
	@stopped = grep { !$cont{$_} } @stopped;
	return;
}

# SIGSTOP $node's postmaster, then every child of it until no new one
# appears.  The PIDs, postmaster first, replace the contents of @$frozen as
# they are stopped (the caller sends them SIGCONT: these are not in the
# END block's care); returns them.
sub stop_every_process
{
	my ($node, $frozen) = @_;
	my $pm = $node->{_pid};
	die 'node ' . $node->name . " has no known postmaster\n" unless defined $pm;
	kill 'STOP', $pm;
	@$frozen = ($pm);
	my %stopped = ($pm => 1);
	my $quiet   = 0;
	while ($quiet < 3)
	{
		my @new = grep { !$stopped{$_} } _children($pm);
		if (@new)
		{
			kill 'STOP', @new;
			push @$frozen, @new;
			$stopped{$_} = 1 for @new;
			$quiet = 0;
		}
		else
		{
			$quiet++;
		}
		usleep(20_000);
	}
	return @$frozen;
}

# "pid:state" for each PID, the state letter from /proc/PID/stat (T:
# stopped, Z: zombie; ? when unreadable).
sub proc_states
{
	return map {
		my $s = '?';
		if (open(my $fh, '<', "/proc/$_/stat")) { my $l = <$fh>; close $fh; ($s) = $l =~ /\)\s+(\S)/; }
		"$_:$s"
	} @_;
}

############################################################################
# Cleanup: stop what we started, by PID, whatever happens.

sub _cleanup
{
	return unless $$ == $owner_pid;
	# processes a test SIGSTOPped (stop_pids) and did not continue
	kill 'CONT', @stopped if @stopped;
	@stopped = ();
	# background psqls still running (waitpid sets $?: END restores it)
	foreach my $h (@bg)
	{
		next if defined $h->{rc};
		kill 'TERM', $h->{pid};
		waitpid($h->{pid}, 0);
	}
	@bg = ();
	foreach my $e (@etcds)
	{
		eval { $e->stop('TERM') };
	}
	@etcds = ();
	my @left = grep { _pid_alive($_) } @orphans;
	if (@left)
	{
		# Give them a moment: postmaster death is noticed within a loop.
		usleep(500_000);
		@left = grep { _pid_alive($_) } @left;
	}
	foreach my $pid (@left)
	{
		my $cmd = '';
		if (open(my $fh, '<', "/proc/$pid/cmdline"))
		{
			local $/;
			$cmd = <$fh> // '';
			$cmd =~ s/\0/ /g;
			close $fh;
		}
		print STDERR "# AutohaTest: child $pid of a killed postmaster still alive ($cmd), killing it\n";
		kill 'KILL', $pid;
	}
	@orphans = ();
	return;
}

# On INT/TERM/HUP: exit so that END blocks (ours and Cluster.pm's) run.
foreach my $sig (qw(INT TERM HUP))
{
	$SIG{$sig} = sub {
		print STDERR "# AutohaTest: caught SIG$sig, cleaning up\n";
		exit(1);
	};
}

END
{
	my $code = $?;
	_cleanup();
	$? = $code;
}

1;
