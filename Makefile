# detour — build, test, demo, bench, install.
#
#   make            build everything (BPF objects, skeleton, detourd, detourctl, fakellm)
#   make test       (root) install dependencies, build, run unit and end-to-end tests
#   make demo       (root) live failover demonstration on fake providers
#   make bench      (root) benchmarks, figures written to stdout
#   make SAN=1 ...  the same with AddressSanitizer and UBSan, built in build-san/

CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PREFIX   ?= /usr/local
DESTDIR  ?=

ifeq ($(SAN),1)
BUILD    ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD    ?= build
SANFLAGS :=
endif

ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
# snprintf truncation is deliberate and bounded: input lengths are checked where they enter
WARN     := -Wall -Wextra -Werror -Wno-format-truncation
CFLAGS   ?= -O2 -g
CFLAGS   += $(WARN) $(SANFLAGS) -std=gnu11 -fno-strict-aliasing
CPPFLAGS += -Iinclude -Iagent -I$(BUILD) -I/usr/include/libnl3 -D_GNU_SOURCE
LDFLAGS  += $(SANFLAGS)

LIBS_BPF   := -lbpf -lelf -lz
LIBS_AGENT := $(LIBS_BPF) -levent -lssl -lcrypto -lcurl -lhttp_parser -linih -ljansson -lpthread -lnl-route-3 -lnl-3
LIBS_FAKE  := -levent -levent_openssl -lssl -lcrypto -lhttp_parser -ljansson

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
BPF_SKELS  := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

# agent/*.c except main.c form libdetour.a, shared by detourd, detourctl and the tests
AGENT_SRCS := $(filter-out agent/main.c,$(wildcard agent/*.c))
AGENT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(AGENT_SRCS))
CTL_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/detourctl/*.c))
FAKE_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/fakellm/*.c))
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

# libFuzzer harnesses: clang, ASan + UBSan, in build-fuzz/
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
FUZZ_TIME  ?= 300
FUZZ_deps_fuzz_config := agent/config.c agent/log.c agent/prices.c
FUZZ_libs_fuzz_config := -linih
FUZZ_deps_fuzz_sni    := agent/sni.c
FUZZ_libs_fuzz_sni    :=
FUZZ_deps_fuzz_http   := agent/http_server.c agent/sockio.c agent/headers.c agent/errors.c agent/log.c
FUZZ_libs_fuzz_http   := -levent -lssl -lcrypto -lhttp_parser -ljansson
# a provider's response, as the own upstream client reads it
FUZZ_deps_fuzz_h1resp := agent/h1resp.c agent/headers.c
FUZZ_libs_fuzz_h1resp := -lhttp_parser
# translators: a client request parsed and emitted for each family; a provider
# answer and stream translated into each client shape
FUZZ_deps_fuzz_xreq    := $(wildcard agent/xreq*.c) agent/traits.c agent/sticky.c agent/json.c agent/arena.c
FUZZ_libs_fuzz_xreq    := -ljansson
FUZZ_deps_fuzz_xstream := $(wildcard agent/xresp*.c agent/xstream*.c) agent/json.c agent/sse.c agent/arena.c
FUZZ_libs_fuzz_xstream := -levent -ljansson
FUZZ_deps_fuzz_json    := agent/json.c agent/arena.c
FUZZ_libs_fuzz_json    := -ljansson
FUZZ_deps_fuzz_prices  := agent/prices.c
FUZZ_libs_fuzz_prices  :=
FUZZ_deps_fuzz_xusage  := $(wildcard agent/xreq*.c agent/xresp*.c agent/xstream*.c) agent/xusage.c \
			  agent/json.c agent/sse.c agent/arena.c
FUZZ_libs_fuzz_xusage  := -levent -ljansson

BINS := $(BUILD)/detourd $(BUILD)/detourctl $(BUILD)/fakellm

.PHONY: all deps test unit e2e demo bench fuzz fuzz-smoke install uninstall clean check-root
.DELETE_ON_ERROR:
.SECONDARY: $(BPF_OBJS) $(BPF_SKELS)
.SECONDEXPANSION:

all: $(BINS) $(UNIT_BINS) $(BENCH_BINS)

# ---- BPF ------------------------------------------------------------------

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) include/detour.h $(BUILD)/vmlinux.h
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-Iinclude -I$(BUILD) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@

# ---- userspace ------------------------------------------------------------

$(BUILD)/%.o: %.c | $(BPF_SKELS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libdetour.a: $(AGENT_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/detourd: $(BUILD)/agent/main.o $(BUILD)/libdetour.a
	$(CC) $(LDFLAGS) $^ $(LIBS_AGENT) -o $@

$(BUILD)/detourctl: $(CTL_OBJS) $(BUILD)/libdetour.a
	$(CC) $(LDFLAGS) $^ $(LIBS_AGENT) -o $@

$(BUILD)/fakellm: $(FAKE_OBJS)
	$(CC) $(LDFLAGS) $^ $(LIBS_FAKE) -o $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libdetour.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(LIBS_AGENT) -levent_openssl -lcmocka -o $@

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libdetour.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(LIBS_AGENT) -levent_openssl -o $@

build-fuzz/%: tests/fuzz/%.c $$(FUZZ_deps_%) agent/*.h include/detour.h
	@mkdir -p $(@D)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-Wall -Wextra -Werror -std=gnu11 -Iinclude -Iagent -D_GNU_SOURCE $< $(FUZZ_deps_$*) $(FUZZ_libs_$*) -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- set-up, tests, demo, bench ---------------------------------------------

# These need root (BPF, cgroups, namespaces). Without it, re-run through sudo
# when there is one, otherwise say so plainly.
check-root:
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "detour: 'make $(MAKECMDGOALS)' needs root (BPF programs, cgroups, network namespaces)." >&2; \
		if command -v sudo >/dev/null 2>&1; then echo "detour: re-running with sudo" >&2; \
			exec sudo $(MAKE) $(MAKECMDGOALS); fi; \
		echo "detour: no sudo on this machine: run it as root." >&2; exit 1; \
	fi

deps: check-root
	@tools/install-deps.sh

unit: all
	@tests/run-unit.sh $(BUILD)

e2e: all
	@tests/e2e/run.sh $(BUILD)

test: check-root deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@tests/run-all.sh build build-san

# Each harness for FUZZ_TIME seconds (default 300) on its corpus.
fuzz: $(FUZZ_BINS)
	@tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_BINS)

fuzz-smoke: $(FUZZ_BINS)
	@tests/fuzz/run.sh 10 $(FUZZ_BINS)

demo: check-root deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh $(BUILD)

bench: check-root deps
	@$(MAKE) --no-print-directory all
	@bench/run.sh $(BUILD)

# ---- install ------------------------------------------------------------------

DOCDIR := $(DESTDIR)$(PREFIX)/share/doc/detour

install: $(BUILD)/detourd $(BUILD)/detourctl
	install -D -m 0755 $(BUILD)/detourd $(DESTDIR)$(PREFIX)/sbin/detourd
	install -D -m 0755 $(BUILD)/detourctl $(DESTDIR)$(PREFIX)/bin/detourctl
	install -D -m 0644 systemd/detour.service $(DESTDIR)/etc/systemd/system/detour.service
	install -D -m 0644 systemd/detour.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/detour.conf
	install -D -m 0644 README.md $(DOCDIR)/README.md
	install -m 0644 docs/*.md $(DOCDIR)/
	install -d -m 0700 $(DESTDIR)/etc/detour/keys
	install -m 0644 data/prices.conf $(DESTDIR)/etc/detour/prices.conf
	@if [ -e $(DESTDIR)/etc/detour/detour.conf ]; then \
		echo "keeping existing $(DESTDIR)/etc/detour/detour.conf"; \
	else install -m 0644 systemd/detour.conf.example $(DESTDIR)/etc/detour/detour.conf; fi

# The configuration goes only when it is still the example; keys never silently.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/detourd $(DESTDIR)$(PREFIX)/bin/detourctl
	rm -f $(DESTDIR)/etc/systemd/system/detour.service $(DESTDIR)/usr/lib/tmpfiles.d/detour.conf
	rm -rf $(DOCDIR)
	rm -f $(DESTDIR)/etc/detour/prices.conf
	@if cmp -s systemd/detour.conf.example $(DESTDIR)/etc/detour/detour.conf; then \
		rm -f $(DESTDIR)/etc/detour/detour.conf; fi
	@rmdir $(DESTDIR)/etc/detour/keys $(DESTDIR)/etc/detour 2>/dev/null || \
		echo "kept $(DESTDIR)/etc/detour: it holds an edited configuration or keys"

clean:
	rm -rf build build-san build-fuzz
