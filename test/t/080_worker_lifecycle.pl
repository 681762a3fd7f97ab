
# 080_worker_lifecycle: the worker's settings and life cycle.
#
#  - a loop_wait that does not fit three times into ttl: the server refuses
#    to start ("invalid pg_autoha timing");
#  - empty autoha.etcd_endpoints: the server starts, the worker stays idle and
#    says why (WARNING, autoha_node().last_error);
#  - on a leader + replica cluster:
#    - the replica's worker terminated: a new worker takes over the lease its
#      predecessor held (member key and lease unchanged), same leader;
#    - a reload with inconsistent timing is ignored (WARNING), the leader
#      keeps its lease;
#    - a reload that puts a dead etcd endpoint first: the leader stays leader
#      and talks to the live endpoint;
#    - fast shutdown of the leader releases the leader key at once, well
#      before the TTL.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AutohaTest;

my $ttl       = $AutohaTest::TTL;
my $loop_wait = $AutohaTest::LOOP_WAIT;
my $cluster   = cluster_name_for_test();
my $etcd      = start_etcd();
my $json      = JSON::PP->new->utf8->canonical->allow_bignum;

# Lease id (as a string) of an etcd key, undef when the key is absent.
# Dies when etcd cannot be read.
sub key_lease
{
	my ($key) = @_;
	my ($ok, $out, $err) = AutohaTest::etcdctl($etcd, 10, 'get', $key, '-w', 'json');
	die "etcdctl get $key failed: $err\n" unless $ok;
	my $r = $json->decode($out);
	my ($kv) = @{ $r->{kvs} || [] };
	return undef unless $kv;
	return '' . ($kv->{lease} // 0);
}

# "00:00:01.5" (an interval as row_to_json prints it) -> seconds
sub interval_secs
{
	my ($iv) = @_;
	return undef unless defined $iv && $iv =~ /^(\d+):(\d+):(\d+(?:\.\d+)?)$/;
	return $1 * 3600 + $2 * 60 + $3;
}

# Watch for $secs seconds that $node stays leader: out of recovery, worker
# says is_leader, and the leader key names it.  Returns the problems seen;
# the largest autoha_node().view_age seen goes to $$max_view_age.
sub stays_leader
{
	my ($node, $secs, $max_view_age) = @_;
	my $lk = ckey($cluster, 'leader');
	my $t0 = now_s();
	my @bad;
	my $max = 0;
	while (now_s() - $t0 < $secs)
	{
		my $el   = now_s() - $t0;
		my $info = autoha_node($node);
		push @bad, sprintf('%.1f s: autoha_node() is_leader = %s', $el,
			$info ? ($info->{is_leader} ? 'true' : 'false') : 'unreadable')
		  unless $info && $info->{is_leader};
		my $age = $info && interval_secs($info->{view_age});
		$max = $age if defined $age && $age > $max;
		my $k = eval { etcd_get($etcd, $lk) };
		push @bad, sprintf('%.1f s: leader key = %s', $el, $k // 'absent')
		  unless ($k // '') eq $node->name;
		push @bad, sprintf('%.1f s: in recovery', $el) unless (in_recovery($node) // 1) == 0;
		usleep(300_000);
	}
	$$max_view_age = $max if $max_view_age;
	return @bad;
}

############################################################################
# 1. inconsistent timing at start: refused

{
	my $bad = PostgreSQL::Test::Cluster->new('badtiming');
	$bad->init(allows_streaming => 1);
	autoha_conf($bad, etcd => $etcd, cluster_name => cluster_name_for_test('badtiming'),
		ttl => 2, loop_wait => 1000);
	my $started = $bad->start(fail_ok => 1);
	ok(!$started, 'a server with autoha.ttl = 2 s and autoha.loop_wait = 1000 ms refuses to start');
	like(slurp_file($bad->logfile), qr/invalid pg_autoha timing/,
		'its log says "invalid pg_autoha timing"');
	$bad->stop('immediate') if $started;
}

############################################################################
# 2. no etcd endpoints: idle

{
	my $idle = PostgreSQL::Test::Cluster->new('idle');
	$idle->init(allows_streaming => 1);
	# An idle worker can never confirm a lease, so the server stays fenced
	# and CREATE EXTENSION would be refused: create it before preloading.
	$idle->append_conf('postgresql.conf', "max_prepared_transactions = 2\n");
	$idle->start;
	sql_ok($idle, 'CREATE EXTENSION pg_autoha');
	sql_ok($idle, 'CREATE TABLE idle_t (id int)');
	$idle->stop('fast');
	autoha_conf($idle, endpoints => '', cluster_name => cluster_name_for_test('idle'));
	ok($idle->start(fail_ok => 1), 'a server with autoha.etcd_endpoints = \'\' starts');
	my $info;
	my $secs = poll_until(
		sub {
			$info = autoha_node($idle);
			return $info && $info->{role} eq 'idle' && ($info->{last_error} // '') =~ /etcd_endpoints/;
		},
		30, 'autoha_node() on idle to say role idle and why');
	ok(defined $secs, 'autoha_node(): role idle, last_error mentions etcd_endpoints')
	  or diag('autoha_node(): ' . $json->encode($info // {}));
	note("idle node: role $info->{role}, last_error: " . ($info->{last_error} // 'NULL')) if $info;
	ok(!($info && $info->{is_leader}), 'the idle node is not leader');
	like(slurp_file($idle->logfile), qr/WARNING:.*autoha\.etcd_endpoints is empty/,
		'its log has the WARNING "autoha.etcd_endpoints is empty"');
	ok($info && $info->{fenced} && ($info->{fence_reason} // '') =~ /etcd_endpoints/,
		'the idle server is fenced, and says why')
	  or diag('autoha_node(): ' . $json->encode($info // {}));
	my ($r, $err) = sql($idle, 'SET default_transaction_read_only = off; INSERT INTO idle_t VALUES (1)');
	ok(!defined $r && ($err // '') =~ /does not hold the leader lease/, 'a write on the idle server is refused')
	  or diag("result: " . ($r // 'undef') . ", error: " . ($err // ''));
	is(sql($idle, 'SELECT count(*) FROM idle_t'), '0', 'nothing was committed; reads work');
	$idle->stop('fast');
}

############################################################################
# A leader and one replica.

my $nodes = make_cluster(etcd => $etcd, n => 2, cluster_name => $cluster);
my ($n1, $n2) = @$nodes;
my ($leader) = wait_for_leader($nodes, 30);
is($leader && $leader->name, 'node1', 'node1 leads') or BAIL_OUT('no leader');
my $lk = ckey($cluster, 'leader');

############################################################################
# 3. the replica's worker terminated: a new one keeps the lease

{
	my $mkey   = ckey($cluster, 'members', 'node2');
	my $info0  = autoha_node($n2);
	my $pid0   = $info0 && $info0->{worker_pid};
	my $lease0 = key_lease($mkey);
	ok($pid0, "node2's worker runs (pid " . ($pid0 // '?') . ')');
	ok(defined $lease0 && $lease0 ne '0', "node2's member key hangs on lease " . ($lease0 // 'none'));
	my $leader_lease0 = key_lease($lk);

	my $log_offset = -s $n2->logfile;
	is(sql($n2, 'SELECT pg_terminate_backend(worker_pid) FROM autoha_node()'), 't',
		"pg_terminate_backend() of node2's worker");
	my $t0 = now_s();

	# Watch the member key until the new worker has run for a while.
	# @runs: [ state, first seen, last seen ] of consecutive samples
	my @runs;
	my ($new_pid, $t_new);
	while (now_s() - $t0 < 60)
	{
		my $el = now_s() - $t0;
		my $l  = eval { key_lease($mkey) };
		my $state =
		    $@             ? "etcd unreadable: $@"
		  : !defined $l    ? 'member key absent'
		  : $l ne $lease0  ? "member key on lease $l"
		  :                  'ok';
		if (@runs && $runs[-1][0] eq $state) { $runs[-1][2] = $el; }
		else { push @runs, [ $state, $el, $el ]; }

		if (!defined $t_new)
		{
			my $i = autoha_node($n2);
			if ($i && $i->{worker_pid} && $i->{worker_pid} != $pid0)
			{
				my $alive = sql($n2,
					"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_autoha' AND pid = $i->{worker_pid}");
				if (($alive // '') eq '1')
				{
					$new_pid = $i->{worker_pid};
					$t_new   = now_s();
				}
			}
		}
		# keep watching for six loops (and at least 3 s) after the new worker showed up
		last if defined $t_new && now_s() - $t_new > 3 + 6 * $loop_wait / 1000;
		usleep(100_000);
	}
	ok(defined $new_pid, 'a new worker runs on node2 (pid ' . ($new_pid // 'none') . ", was $pid0)");
	note(sprintf('new worker on node2 %.2f s after pg_terminate_backend', $t_new - $t0)) if defined $t_new;
	my @key_problems = grep { $_->[0] ne 'ok' } @runs;
	ok(!@key_problems, "node2's member key stayed in etcd on the same lease ($lease0) throughout")
	  or diag("node2's member key after pg_terminate_backend:\n"
		  . join('', map { sprintf("  %.2f s .. %.2f s: %s\n", $_->[1], $_->[2], $_->[0]) } @runs));
	is(key_lease($mkey), $lease0, "node2's member key still hangs on lease $lease0");
	is(etcd_get($etcd, $lk), 'node1', 'the leader key still names node1');
	is(key_lease($lk), $leader_lease0, 'the leader key is still on the same lease');
	my $l = find_leader($nodes);
	is($l && $l->name, 'node1', 'node1 is still the leader');
	is(in_recovery($n2), 1, 'node2 is still a replica');
	ok(defined wait_streaming($n1, [$n2], 30), 'node2 still streams from node1');
	my $i2 = autoha_node($n2);
	ok($i2 && $i2->{role} eq 'replica' && ($i2->{leader} // '') eq 'node1',
		'the new worker of node2 sees itself as replica of node1')
	  or diag('autoha_node(): ' . $json->encode($i2 // {}));
	my $log = slurp_file($n2->logfile, $log_offset);
	note('node2 worker log lines after the termination:');
	note($_) for grep { /pg_autoha/ } split /\n/, $log;
}

# 3b. the same on the leader: terminating its worker is not a failover
{
	my $lk = ckey($cluster, 'leader');
	my $leader_lease0 = key_lease($lk);
	my $pid0 = autoha_node($n1)->{worker_pid};
	is(sql($n1, 'SELECT pg_terminate_backend(worker_pid) FROM autoha_node()'), 't',
		"pg_terminate_backend() of the leader's worker");
	my $t0 = now_s();
	my @changes;
	my $new_pid;
	while (now_s() - $t0 < 3 + 3 * $ttl)
	{
		my $l = eval { key_lease($lk) } // 'absent';
		push @changes, sprintf('%.2f s: leader key lease %s', now_s() - $t0, $l)
		  if $l ne $leader_lease0;
		my $i = autoha_node($n1);
		$new_pid = $i->{worker_pid} if $i && $i->{worker_pid} && $i->{worker_pid} != $pid0;
		usleep(100_000);
	}
	ok($new_pid, "a new worker runs on the leader (pid " . ($new_pid // 'none') . ", was $pid0)");
	is_deeply(\@changes, [], 'the leader key stayed on the same lease throughout');
	is(in_recovery($n2), 1, 'node2 was not promoted');
	my $i1 = autoha_node($n1);
	ok($i1 && $i1->{is_leader} && $i1->{role} eq 'leader', "node1's new worker leads");
}

############################################################################
# 4. reload with inconsistent timing on the leader: ignored

{
	my $log_offset = -s $n1->logfile;
	sql_ok($n1, "ALTER SYSTEM SET autoha.loop_wait = '3s'");
	my $t_reload = now_s();
	sql_ok($n1, 'SELECT pg_reload_conf()');
	ok(defined poll_until(sub { (sql($n1, 'SHOW autoha.loop_wait') // '') eq '3s' }, 30, 'loop_wait 3s to be loaded'),
		'the server now has autoha.loop_wait = 3s (with autoha.ttl = ' . $ttl . 's)');
	my $secs = poll_until(sub { slurp_file($n1->logfile, $log_offset) =~ /ignoring new timing settings/ },
		30, '"ignoring new timing settings" in the log of node1');
	ok(defined $secs, 'node1 logs "ignoring new timing settings"');
	note(sprintf('WARNING found in the log %.2f s after the reload', now_s() - $t_reload)) if defined $secs;
	my $max_age;
	my @bad = stays_leader($n1, 3 * $ttl, \$max_age);
	is_deeply(\@bad, [], "node1 keeps the lease for 3 x ttl = @{[3 * $ttl]} s");
	note(sprintf('largest autoha_node().view_age seen on node1 meanwhile: %.3f s', $max_age));
	ok($max_age < 2, "the worker kept looping every ${loop_wait} ms (view_age stayed below 2 s, not 3 s loops)");
	my $i = autoha_node($n1);
	ok($i && defined $i->{lease_time_left}, 'node1 lease time left: ' . ($i->{lease_time_left} // 'NULL'));

	sql_ok($n1, 'ALTER SYSTEM RESET autoha.loop_wait');
	sql_ok($n1, 'SELECT pg_reload_conf()');
	ok(defined poll_until(sub { (sql($n1, 'SHOW autoha.loop_wait') // '') eq "${loop_wait}ms" }, 30,
			"loop_wait back to ${loop_wait}ms"),
		"autoha.loop_wait back to ${loop_wait}ms after RESET");
}

############################################################################
# 5. reload with a dead etcd endpoint first: the leader stays leader

{
	my $dead_port = PostgreSQL::Test::Cluster::get_free_port();
	my $real      = $etcd->endpoint;
	my $eps       = "http://127.0.0.1:$dead_port,$real";
	sql_ok($n1, "ALTER SYSTEM SET autoha.etcd_endpoints = '$eps'");
	sql_ok($n1, 'SELECT pg_reload_conf()');
	ok(defined poll_until(sub { (sql($n1, 'SHOW autoha.etcd_endpoints') // '') eq $eps }, 30,
			'new endpoints to be loaded'),
		"node1 now has autoha.etcd_endpoints = '$eps'");
	# give the worker a loop to rebuild its client on the new list
	usleep(2 * $loop_wait * 1000);
	my @bad = stays_leader($n1, 3 * $ttl);
	is_deeply(\@bad, [], "node1 stays leader for 3 x ttl = @{[3 * $ttl]} s with a dead endpoint listed first");
	my $i = autoha_node($n1);
	is($i && $i->{etcd_endpoint}, $real, 'autoha_node().etcd_endpoint names the live endpoint');
	is($i && $i->{last_error}, undef, 'no error on node1')
	  or diag('autoha_node(): ' . $json->encode($i // {}));

	sql_ok($n1, 'ALTER SYSTEM RESET autoha.etcd_endpoints');
	sql_ok($n1, 'SELECT pg_reload_conf()');
	ok(defined poll_until(sub { (sql($n1, 'SHOW autoha.etcd_endpoints') // '') eq $real }, 30,
			'endpoints back to the live one'),
		'autoha.etcd_endpoints back to the live endpoint after RESET');
	ok(defined poll_until(sub { my $x = autoha_node($n1); $x && $x->{is_leader} }, 30, 'node1 leader'),
		'node1 is still leader');
}

############################################################################
# 6. fast shutdown of the leader releases the leader key at once

{
	is(etcd_get($etcd, $lk), 'node1', 'before the stop the leader key names node1');
	my $t0 = now_s();
	$n1->stop('fast');
	my $stop_secs = now_s() - $t0;
	my $k;
	my $poll = poll_until(
		sub {
			$k = etcd_get($etcd, $lk);
			return !defined $k || $k eq 'node2';
		},
		3 * $ttl, 'the leader key to be gone or name node2', 0.05);
	my $secs = defined $poll ? now_s() - $t0 : undef;
	ok(defined $secs, 'the leader key is released after a fast shutdown of the leader');
	note(sprintf('leader key %s %.2f s after the fast shutdown began (pg_ctl stop took %.2f s; ttl %d s)',
			defined $k ? "names $k" : 'gone', $secs // -1, $stop_secs, $ttl));
	ok(defined $secs && $secs < $ttl, "released in less than ttl ($ttl s)");
	like(slurp_file($n1->logfile), qr/pg_autoha: released lease/, 'node1 logs that it released its lease');

	my ($new) = wait_for_leader([$n2], 60);
	is($new && $new->name, 'node2', 'node2 takes over');
}

is(scalar(@AutohaTest::several_leaders), 0, 'never saw two leaders');
$_->stop('fast') for grep { defined $_->{_pid} } @$nodes;
done_testing();
