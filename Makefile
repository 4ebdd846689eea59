# masd: build the BPF programs, their skeletons, masd and masctl; run the tests.
# O= picks the build folder, SAN=1 builds userspace with ASan and UBSan.

O ?= build
SAN ?= 0
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
DESTDIR ?=

PKGS := libbpf yaml-0.1 libcrypto libsystemd
DEB_PACKAGES := make gcc clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libyaml-dev \
	libssl-dev libsystemd-dev libcmocka-dev pkg-config clang-format systemd iproute2 \
	nftables util-linux procps jq passwd openssl debootstrap systemd-container \
	bash-completion groff-base man-db dnsmasq-base liburing-dev valgrind

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wmissing-prototypes -Wshadow -Wformat=2 -fno-strict-aliasing \
	-Ibpf -Idaemon -I$(O)
LDFLAGS ?=
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lresolv

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ibpf \
	-I/usr/include/$(shell uname -m)-linux-gnu

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:bpf/%.bpf.c=$(O)/bpf/%.bpf.o)
SKELS := $(BPF_SRCS:bpf/%.bpf.c=$(O)/%.skel.h)

LIB_SRCS := $(filter-out daemon/masd.c daemon/masctl.c,$(wildcard daemon/*.c))
LIB_OBJS := $(LIB_SRCS:daemon/%.c=$(O)/daemon/%.o)
LIB := $(O)/libmasd.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/unit/%)
ITEST_SRCS := $(wildcard tests/integration/*.c)
ITEST_BINS := $(ITEST_SRCS:tests/integration/%.c=$(O)/tests/integration/%)
BENCH_SRCS := $(filter-out %.bpf.c,$(wildcard tests/bench/*.c))
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(O)/tests/bench/%)
BYPASS_SRCS := $(wildcard tests/bypass/*.c)
BYPASS_BINS := $(BYPASS_SRCS:tests/bypass/%.c=$(O)/tests/bypass/%)

# libFuzzer harnesses (tests/fuzz/fuzz_*.c) against the daemon's sources built with clang, ASan
# and UBSan; one is built once the module it fuzzes exists (audit_verify.c from the audit branch).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wno-unused-parameter -Ibpf -Idaemon -I$(O) \
	$(FUZZ_SAN)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
ifeq ($(wildcard daemon/audit_verify.c),)
FUZZ_SRCS := $(filter-out tests/fuzz/fuzz_audit_export.c,$(FUZZ_SRCS))
endif
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(O)/fuzz/%)
FUZZ_LIB := $(O)/fuzz/libmasd.a
FUZZ_LIB_OBJS := $(LIB_SRCS:daemon/%.c=$(O)/fuzz/daemon/%.o)

FORMAT_FILES = $(shell git ls-files -co --exclude-standard -- '*.c' '*.h' 2>/dev/null)

.PHONY: all deps check check-format format unit integration run install clean bench fuzz \
	fuzz-build soak

# masd and masctl are built once their sources exist, so a branch without them still builds.
MAIN_BINS := $(patsubst daemon/%.c,$(O)/%,$(wildcard daemon/masd.c daemon/masctl.c))

all: $(MAIN_BINS) $(UNIT_BINS) $(ITEST_BINS) $(BENCH_BINS) $(BYPASS_BINS)

$(O)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) | $(O)/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/%.skel.h: $(O)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

$(O)/daemon/%.o: daemon/%.c $(wildcard daemon/*.h) $(wildcard bpf/*.h) $(SKELS) | $(O)/daemon
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(O)/masd: $(O)/daemon/masd.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(O)/masctl: $(O)/daemon/masctl.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(O)/tests/unit/%: tests/unit/%.c $(LIB) $(wildcard tests/unit/*.h) | $(O)/tests/unit
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit -o $@ $< $(LIB) $(LDFLAGS) $(PKG_LIBS) -lcmocka

$(O)/tests/integration/%: tests/integration/%.c $(LIB) | $(O)/tests/integration
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(PKG_LIBS) -lpthread

$(O)/tests/bench/%: tests/bench/%.c $(LIB) | $(O)/tests/bench
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(PKG_LIBS) -lpthread

$(O)/tests/bypass/%: tests/bypass/%.c | $(O)/tests/bypass
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) -luring -lpthread

$(O)/fuzz/daemon/%.o: daemon/%.c $(wildcard daemon/*.h) $(wildcard bpf/*.h) $(SKELS) | $(O)/fuzz/daemon
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(O)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< $(FUZZ_LIB) $(PKG_LIBS)

$(O)/bpf $(O)/daemon $(O)/tests/unit $(O)/tests/integration $(O)/tests/bench \
	$(O)/tests/bypass $(O)/fuzz/daemon:
	mkdir -p $@

# Install the Debian packages the build and the tests need; does nothing when all are there.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || \
			missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: run as root to install:$$missing" >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

check-format:
	@clang-format --dry-run -Werror $(FORMAT_FILES) && echo "format: ok ($(words $(FORMAT_FILES)) files)"

format:
	clang-format -i $(FORMAT_FILES)

unit: all
	@tests/run-tests.sh unit $(O)

integration: all
	@tests/run-tests.sh integration $(O)

# Every test: formatting, unit tests on a normal build, then unit and integration tests on a
# build with ASan and UBSan, with one summary line at the end.
check: deps
	@$(MAKE) --no-print-directory check-format
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory O=$(O)/san SAN=1 all
	@tests/run-tests.sh all $(O) $(O)/san

fuzz-build: $(FUZZ_BINS)

# Each harness for FUZZ_SECONDS on a scratch copy of its seed corpus; prints executions per
# harness and keeps crashes in $(O)/fuzz/artifacts (turn them into tests/fuzz/corpus fixtures).
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh long $(O) $(FUZZ_SECONDS)

# Longer fault runs: the kill -9 test with 1000 kills instead of 100.
soak: deps all
	@MAS_KILLS=1000 MASD_BUILD=$(O) bash tests/integration/test_fault_kill.sh

run: deps all
	@tests/demo.sh $(O)

bench: deps all
	@tests/bench/run.sh $(O)

# install: binaries, units (their paths rewritten for PREFIX), sysusers.d, tmpfiles.d, the journal
# catalog, man pages, bash completion, and the example policy as /etc/masd/policy.yaml unless one
# exists. Without DESTDIR it also creates the users, the folders and the catalog index, and has a
# running systemd reload its units. uninstall removes what install put in place except the policy.
install uninstall: UNITDIR ?= $(PREFIX)/lib/systemd/system
install uninstall: SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
install uninstall: TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
install uninstall: CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
install uninstall: MANDIR ?= $(PREFIX)/share/man
install uninstall: BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
install uninstall: SYSCONFDIR ?= /etc
install: $(O)/masd $(O)/masctl
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSCONFDIR)/masd
	install -m 0755 $(O)/masd $(DESTDIR)$(PREFIX)/sbin/masd
	install -m 0755 $(O)/masctl $(DESTDIR)$(PREFIX)/bin/masctl
	for u in systemd/*.service systemd/*.slice; do \
		sed -e 's|/usr/sbin/masd|$(PREFIX)/sbin/masd|g' -e 's|/usr/bin/masctl|$(PREFIX)/bin/masctl|g' \
			-e 's|/etc/masd/|$(SYSCONFDIR)/masd/|g' $$u >$(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; done
	install -m 0644 systemd/masd.sysusers $(DESTDIR)$(SYSUSERSDIR)/masd.conf
	sed 's|/etc/masd|$(SYSCONFDIR)/masd|g' systemd/masd.tmpfiles >$(DESTDIR)$(TMPFILESDIR)/masd.conf
	chmod 0644 $(DESTDIR)$(TMPFILESDIR)/masd.conf
	if [ -e systemd/masd.catalog ]; then install -d $(DESTDIR)$(CATALOGDIR) && \
		install -m 0644 systemd/masd.catalog $(DESTDIR)$(CATALOGDIR)/masd.catalog; fi
	install -m 0644 docs/man/masd.policy.5 $(DESTDIR)$(MANDIR)/man5/masd.policy.5
	install -m 0644 docs/man/masd.8 docs/man/masctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 systemd/masctl.bash-completion $(DESTDIR)$(BASHCOMPDIR)/masctl
	[ -e $(DESTDIR)$(SYSCONFDIR)/masd/policy.yaml ] || \
		install -m 0640 policies/example.yaml $(DESTDIR)$(SYSCONFDIR)/masd/policy.yaml
	@if [ -z "$(DESTDIR)" ]; then \
		set -x; \
		systemd-sysusers $(SYSUSERSDIR)/masd.conf; \
		systemd-tmpfiles --create $(TMPFILESDIR)/masd.conf; \
		[ ! -e $(CATALOGDIR)/masd.catalog ] || journalctl --update-catalog; \
		[ ! -d /run/systemd/system ] || systemctl daemon-reload; \
	fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/masd $(DESTDIR)$(PREFIX)/bin/masctl \
		$(DESTDIR)$(UNITDIR)/masd.service $(DESTDIR)$(UNITDIR)/masd-bpffs.service \
		$(DESTDIR)$(UNITDIR)/mas-agents.slice $(DESTDIR)$(UNITDIR)/mas-agent@.service \
		$(DESTDIR)$(SYSUSERSDIR)/masd.conf $(DESTDIR)$(TMPFILESDIR)/masd.conf \
		$(DESTDIR)$(CATALOGDIR)/masd.catalog $(DESTDIR)$(MANDIR)/man5/masd.policy.5 \
		$(DESTDIR)$(MANDIR)/man8/masd.8 $(DESTDIR)$(MANDIR)/man8/masctl.8 \
		$(DESTDIR)$(BASHCOMPDIR)/masctl
	@echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/masd, the masd user and groups, /var/lib/masd and" \
		"the pinned enforcement (masctl teardown removes it)"

.PHONY: uninstall

clean:
	rm -rf $(O)
