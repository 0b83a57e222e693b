# SPDX-License-Identifier: Apache-2.0
# meshtrace: `make` builds build/meshtrace; `make test` runs every test; `make run` starts the agent.

BUILD    ?= build
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PROTOC_C ?= protoc-c
ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

SAN      ?=
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-missing-field-initializers \
	    -D_GNU_SOURCE -I. -I$(BUILD) -I$(BUILD)/proto -fno-omit-frame-pointer
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
# The fuzzers' build (make fuzzers): clang, the library instrumented for libFuzzer.
ifeq ($(SAN),fuzz)
# (clang, unlike gcc, flags a va_list passed on from libbpf's print callback: not ours to change.)
CFLAGS   += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	    -Wno-format-nonliteral
LDFLAGS  += -fsanitize=fuzzer,address,undefined
endif
LDLIBS   := -lbpf -lelf -lz -ldeflate -lcurl -lprotobuf-c -lnghttp2 -lpthread -lm

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
	      -Wno-unused-parameter -Wno-missing-field-initializers \
	      -Wno-gnu-variable-sized-type-not-at-end -I$(BUILD) -I.

# Every .c in a stage folder of agent/ (agent/<stage>/) is part of the library the binary and the
# tests link; the files at agent/'s top level compose the stages into the binary.
LIB_SRCS  := $(wildcard agent/*/*.c)
APP_SRCS  := $(wildcard agent/*.c)
PROTOS    := $(wildcard agent/*/proto/*.proto)
PROTO_C   := $(patsubst %.proto,$(BUILD)/proto/%.pb-c.c,$(notdir $(PROTOS)))
PROTO_H   := $(PROTO_C:.c=.h)
LIB_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(PROTO_C:.c=.o)
BPF_SRCS  := $(wildcard bpf/*.bpf.c)
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
TEST_SRCS := $(wildcard tests/*/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

# libFuzzer harnesses (tests/fuzz/): one per input the agent reads from outside; fuzz_l7_<p> is
# tests/fuzz/fuzz_l7.c built for the parser <p>.
FUZZ_L7	       := http1 http2 postgres mysql redis memcached dnstcp
FUZZ_HARNESSES := $(addprefix fuzz_l7_,$(FUZZ_L7)) fuzz_http1 fuzz_dns fuzz_sql fuzz_httpd \
		  fuzz_otlp_env fuzz_replay fuzz_cli
FUZZ_BUILD     ?= $(BUILD)/fuzz
FUZZ_SECONDS   ?= 60
FUZZ_SMOKE_SECONDS ?= 2
FUZZ_BINS      := $(addprefix $(BUILD)/fuzzers/,$(FUZZ_HARNESSES))

.PHONY: all deps run test units unit-test integration-test bench clean format check-format check-deps \
	image fuzz fuzzers fuzz-bins soak
.SECONDARY:
all: $(BUILD)/meshtrace

deps:
	@./scripts/deps.sh

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/*.h $(BUILD)/vmlinux.h
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp && mv $@.tmp $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

vpath %.proto $(sort $(dir $(PROTOS)))
$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: %.proto
	@mkdir -p $(@D)
	$(PROTOC_C) -I$(<D) --c_out=$(BUILD)/proto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(CC) $(filter-out -Wshadow,$(CFLAGS)) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(PROTO_H) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The agent's page: every file in dashboards/web/ becomes bytes in the binary (agent/serve/assets.c).
$(BUILD)/dashboard_assets.h: scripts/embed_assets.sh dashboards/web $(wildcard dashboards/web/*)
	@mkdir -p $(@D)
	./scripts/embed_assets.sh dashboards/web > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/agent/serve/assets.o: $(BUILD)/dashboard_assets.h

$(BUILD)/libmeshtrace.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/meshtrace: $(patsubst %.c,$(BUILD)/obj/%.o,$(APP_SRCS)) $(BUILD)/libmeshtrace.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libmeshtrace.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libmeshtrace.a $(LDFLAGS) $(LDLIBS) -lcmocka

# The harnesses, built by clang in $(FUZZ_BUILD), and their seeds (tests/fuzz/seeds.py).
fuzzers:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(CLANG) SAN=fuzz fuzz-bins

fuzz-bins: $(FUZZ_BINS) $(BUILD)/fuzz-seeds/.stamp

$(BUILD)/fuzzers/fuzz_l7_%: tests/fuzz/fuzz_l7.c tests/fuzz/fuzz_check.h $(BUILD)/libmeshtrace.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DFUZZ_PROTO=MT_PROTO_$$(echo $* | tr a-z A-Z | sed 's/^DNSTCP$$/DNS/') \
		-o $@ $< $(BUILD)/libmeshtrace.a $(LDFLAGS) $(LDLIBS)

# The command line is the binary's own (agent/cli.c), not the library's.
$(BUILD)/fuzzers/fuzz_cli: tests/fuzz/fuzz_cli.c $(BUILD)/obj/agent/cli.o $(BUILD)/libmeshtrace.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/obj/agent/cli.o $(BUILD)/libmeshtrace.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzzers/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_check.h $(BUILD)/libmeshtrace.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libmeshtrace.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzz-seeds/.stamp: tests/fuzz/seeds.py $(wildcard tests/protocols/*.c tests/protocols/*.h)
	rm -rf $(@D) && ./tests/fuzz/seeds.py $(@D) && touch $@

# Runs every harness for FUZZ_SECONDS (FUZZ=name ... picks some); the corpus grows in
# $(FUZZ_BUILD)/corpus/, crashes land in $(FUZZ_BUILD)/artifacts/.
fuzz: fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_DIR=$(FUZZ_BUILD) ./tests/run_fuzz.sh $(FUZZ)

unit-test: $(TEST_BINS)
	@./tests/run_units.sh $(TEST_BINS)

integration-test: $(BUILD)/meshtrace
	@./tests/run_integration.sh

# The README's test command: installs what is missing, builds, runs the unit tests built with
# ASan/UBSan and a short pass of every fuzzer (FUZZ_SMOKE_SECONDS each), then the integration tests
# against the normal build. make check-deps first: an upstream include or a cycle fails the run.
test:
	@./scripts/deps.sh --check-or-install
	@$(MAKE) --no-print-directory all check-deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/san SAN=1 units $(BUILD)/san/meshtrace
	@$(MAKE) --no-print-directory fuzzers
	@UNIT_DIR=$(BUILD)/san/tests FUZZ_DIR=$(FUZZ_BUILD) FUZZ_SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) \
		./tests/run_all.sh

units: $(TEST_BINS)

# The DaemonSet's image (deploy/Dockerfile, FROM scratch): the agent and the libraries it loads,
# laid out by scripts/image_rootfs.sh and built by buildah; no registry is needed.
IMAGE ?= localhost/meshtrace:dev
image: $(BUILD)/meshtrace
	./scripts/image_rootfs.sh $(BUILD)/meshtrace $(BUILD)/image-root
	buildah bud --quiet -f deploy/Dockerfile -t $(IMAGE) $(BUILD)/image-root
	@buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' $(IMAGE)

run:
	@./scripts/deps.sh --check-or-install
	@$(MAKE) --no-print-directory all
	./$(BUILD)/meshtrace $(ARGS)

bench:
	@./scripts/deps.sh --check-or-install
	@$(MAKE) --no-print-directory all
	@./bench/run.sh

# The soak: SOAK_SECONDS (default 600) of mixed load on loopback against real servers, the agent
# exporting to a counting sink; RSS, table fill, spans per class in $(BUILD)/soak/report.{json,txt}.
SOAK_SECONDS ?= 600
soak:
	@./scripts/deps.sh --check-or-install
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 tests/integration/soak.py --seconds $(SOAK_SECONDS) --out $(BUILD)/soak

# Dependencies point one way, downstream (scripts/check_deps.py says the order): includes, and
# what the compiled files call.
check-deps: $(LIB_OBJS) $(patsubst %.c,$(BUILD)/obj/%.o,$(APP_SRCS))
	@./scripts/check_deps.py --objs $(BUILD)/obj

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
