# pg_autoha — automatic failover for PostgreSQL from inside the server.
#
#   make && make install          build and install (needs pg_config on PATH)
#   make unit                     build and run the C unit tests (no server)
#   make installcheck             pg_regress against a running server started
#                                 with pg_autoha preloaded, then the TAP tests
#   test/run_all.sh               everything above on a fresh Debian 12 (root)
#   make demo                     a local 3-node cluster fails over under load
#                                 (root; installs what is missing; see README)
#   make bench                    the failover benchmark (about 25 minutes)

MODULE_big = pg_autoha
OBJS = \
	$(WIN32RES) \
	pg_autoha.o \
	src/dcs.o \
	src/etcd.o \
	src/fence.o \
	src/ha.o \
	src/node.o \
	src/request.o \
	src/sql.o \
	src/syncset.o \
	src/worker.o
PGFILEDESC = "pg_autoha - automatic failover through a leader lease in etcd"

EXTENSION = pg_autoha
DATA = pg_autoha--1.0.sql

REGRESS = pg_autoha
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK = -lcurl -ljansson

# built by the rules below; named here because pgxs.mk reads EXTRA_CLEAN
UNIT_TESTS = test/unit/test_ha test/unit/test_syncset test/unit/test_dcs test/unit/test_etcd_codec
UNIT_LIVE = test/unit/test_etcd_live
DRILL = drill/pg_autoha_drill
REJOIN = tools/pg_autoha_rejoin
EXTRA_CLEAN = $(UNIT_TESTS) $(UNIT_LIVE) $(DRILL) $(REJOIN) tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else ifeq ($(filter demo bench,$(MAKECMDGOALS)),)
$(error pg_config not found (PG_CONFIG=$(PG_CONFIG)): install postgresql-server-dev-15, or run make demo as root, which installs it)
endif

# PGXS tracks no header dependencies: a struct that changes size in a header
# must rebuild every object that uses it (shared memory layout).
$(filter %.o,$(OBJS)): $(wildcard $(srcdir)/src/*.h)

# Unit tests of the pure parts: plain C, no server, no network.
UNIT_CFLAGS = -std=gnu99 -g -O0 -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -Werror -I$(srcdir)/src

test/unit/test_ha: test/unit/test_ha.c src/ha.c src/ha.h test/unit/unit.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_ha.c src/ha.c
test/unit/test_syncset: test/unit/test_syncset.c src/syncset.c src/ha.c src/syncset.h src/ha.h test/unit/unit.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_syncset.c src/syncset.c src/ha.c
test/unit/test_dcs: test/unit/test_dcs.c src/dcs.c src/etcd.c src/ha.c src/dcs.h test/unit/unit.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_dcs.c src/dcs.c src/etcd.c src/ha.c -lcurl -ljansson
test/unit/test_etcd_codec: test/unit/test_etcd_codec.c src/etcd.c src/etcd.h test/unit/unit.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_etcd_codec.c src/etcd.c -lcurl -ljansson

# etcd.c against a real etcd: run_etcd_live.sh starts a throwaway etcd on
# free local ports (skipped when /usr/bin/etcd is missing).
test/unit/test_etcd_live: test/unit/test_etcd_live.c src/etcd.c src/etcd.h test/unit/unit.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_etcd_live.c src/etcd.c -lcurl -ljansson

.PHONY: unit
unit: $(UNIT_TESTS) $(UNIT_LIVE)
	prove -e '' $(UNIT_TESTS) test/unit/run_etcd_live.sh

# The failover drill (issue #4): a libpq client program, installed next to
# PostgreSQL's own programs.
all: $(DRILL)
$(DRILL): drill/pg_autoha_drill.c
	$(CC) $(CFLAGS) $(CPPFLAGS) -I$(shell $(PG_CONFIG) --includedir) -o $@ $< \
		$(LDFLAGS) -L$(shell $(PG_CONFIG) --libdir) -lpq -lpthread
install: install-drill
.PHONY: install-drill
install-drill: $(DRILL)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(DRILL) '$(DESTDIR)$(bindir)/pg_autoha_drill'

# The rejoin command (pg_rewind + standby.signal around a stopped server),
# installed next to pg_rewind and pg_ctl, which it runs from its own
# directory; PGBINDIR is its fallback when run from the build tree.  It
# reads etcd through the extension's plain-C modules.
all: $(REJOIN)
$(REJOIN): tools/pg_autoha_rejoin.c src/etcd.c src/dcs.c src/ha.c src/etcd.h src/dcs.h src/ha.h
	$(CC) $(CFLAGS) $(CPPFLAGS) -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir) \
		-DPGBINDIR='"$(bindir)"' -o $@ tools/pg_autoha_rejoin.c src/etcd.c src/dcs.c src/ha.c \
		$(LDFLAGS) -L$(shell $(PG_CONFIG) --libdir) -lpq -lcurl -ljansson
install: install-rejoin
.PHONY: install-rejoin
install-rejoin: $(REJOIN)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(REJOIN) '$(DESTDIR)$(bindir)/pg_autoha_rejoin'

# The demo and the benchmark install packages, build and install by
# themselves, so they work on a machine without pg_config yet.  Their
# settings come from make's command line (make demo FAULT=node SYNC=on),
# which make exports to the scripts' environment.
.PHONY: demo bench
demo:
	bash bench/demo.sh
bench:
	bash bench/failover_bench.sh
