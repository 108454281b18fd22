# faultline: one non-recursive GNU Makefile.  Out-of-tree builds: objects go
# under $(BUILD) (default build/); `make check` reuses these rules with the
# sanitizers in build-asan/.

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
OPT     ?= -O2 -g
SAN     ?=
VERSION := 0.1.0

WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -Wformat=2
ALL_CFLAGS  = $(WARN) $(OPT) $(SAN) -D_GNU_SOURCE -fPIC -MMD -MP -I. $(CFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)
LDLIBS_CORE = -pthread -lm

.DEFAULT_GOAL := all
# Keep test and bench objects (intermediates of the pattern rules) between builds.
.SECONDARY:
.PHONY: all test check bench bench-load bench-run run deps install clean format format-check

# ---- the resilience core -------------------------------------------------
CORE_SRC := $(sort $(wildcard resilience/*.c))
CORE_HDR := $(sort $(wildcard resilience/*.h))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_A   := $(BUILD)/libresilience.a
CORE_SO  := $(BUILD)/libresilience.so

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(CORE_A): $(CORE_OBJ)
	@mkdir -p $(@D) && rm -f $@
	ar rcs $@ $^

$(CORE_SO): $(CORE_OBJ)
	$(CC) $(ALL_LDFLAGS) -shared -Wl,-soname,libresilience.so.0 -o $@ $^ $(LDLIBS_CORE)

$(BUILD)/resilience.pc: resilience/resilience.pc.in
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

# ---- the reference target and the harness ----------------------------------
# Both link Debian's libuv, liburing, cJSON and http-parser (fixed names, so
# the Makefile parses before `make deps` has installed anything).
LDLIBS_EXT := -luv -luring -lcjson -lhttp_parser

TARGET_SRC  := $(filter-out target/main.c,$(sort $(wildcard target/*.c)))
TARGET_A    := $(BUILD)/libfltarget.a
HARNESS_SRC := $(filter-out harness/main.c,$(sort $(wildcard harness/*.c)))
HARNESS_A   := $(BUILD)/libflharness.a
PROBES_SRC  := $(sort $(wildcard probes/*.c))
PROBES_A    := $(BUILD)/libflprobes.a
INJECT_SRC  := $(sort $(wildcard injectors/*.c))
INJECT_A    := $(BUILD)/libflinjectors.a
REPORTS_SRC := $(sort $(wildcard reports/*.c))
REPORTS_A   := $(BUILD)/libflreports.a
# Link order follows the dependency direction of DESIGN.md.
FL_LIBS     := $(HARNESS_A) $(REPORTS_A) $(INJECT_A) $(PROBES_A) $(TARGET_A) $(CORE_A)
PROGRAMS    := $(if $(wildcard target/main.c),$(BUILD)/faultline-target) \
	       $(if $(wildcard harness/main.c),$(BUILD)/faultline)

$(TARGET_A): $(TARGET_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(@D) && rm -f $@
	ar rcs $@ $^

$(HARNESS_A): $(HARNESS_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(@D) && rm -f $@
	ar rcs $@ $^

$(PROBES_A): $(PROBES_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(@D) && rm -f $@
	ar rcs $@ $^

$(INJECT_A): $(INJECT_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(@D) && rm -f $@
	ar rcs $@ $^

$(REPORTS_A): $(REPORTS_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(@D) && rm -f $@
	ar rcs $@ $^

$(BUILD)/faultline-target: $(BUILD)/target/main.o $(TARGET_A) $(CORE_A)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_EXT) $(LDLIBS_CORE)

$(BUILD)/faultline: $(BUILD)/harness/main.o $(FL_LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_EXT) $(LDLIBS_CORE)

# ---- tests: every tests/test_*.c is one TAP program ------------------------
# Tests link the harness and target archives too; the linker takes only the
# objects a test uses.  Test scripts (tests/*.sh) find the programs through
# $FAULTLINE_BUILD.
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_SH  := $(sort $(wildcard tests/*.sh))

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(FL_LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_EXT) $(LDLIBS_CORE)

# ---- benchmarks: every bench/bench_*.c is one program ---------------------
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(FL_LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS_EXT) $(LDLIBS_CORE)

# ---- top-level targets ---------------------------------------------------
all: $(CORE_A) $(CORE_SO) $(BUILD)/resilience.pc $(PROGRAMS) $(TEST_BIN) $(BENCH_BIN)

deps:
	@scripts/deps.sh test format bench

# The sanitizers abort on the first report so that prove counts it as failure.
export ASAN_OPTIONS  ?= detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS ?= halt_on_error=1:print_stacktrace=1

export FAULTLINE_BUILD = $(abspath $(BUILD))

test: $(if $(NODEPS),,deps-test) $(PROGRAMS) $(TEST_BIN)
	prove -f $(TEST_BIN) $(TEST_SH)

.PHONY: deps-test
deps-test:
	@scripts/deps.sh test

# FAULTLINE_SANITIZED tells timing-sensitive tests (the metastability pair)
# that the programs run several times slower under the sanitizers.
check:
	@scripts/deps.sh check fuzz
	FAULTLINE_SANITIZED=1 $(MAKE) --no-print-directory BUILD=build-asan \
		OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" NODEPS=1 test
	$(MAKE) --no-print-directory fuzz

# libFuzzer on the experiment parser and validator for FUZZ_SECONDS (60 by
# default), seeded with the shipped, example and malformed experiments and
# every earlier crash (tests/fuzz-regressions/).  A crash fails the target and
# leaves its input in build-fuzz/ to be added to tests/fuzz-regressions/.
FUZZ_SECONDS ?= 60
FUZZ_SRC := tests/fuzz_experiment.c harness/json.c harness/duration.c harness/params.c \
	harness/families.c harness/experiment.c $(CORE_SRC)

build-fuzz/fuzz_experiment: $(FUZZ_SRC) $(wildcard harness/*.h resilience/*.h)
	@mkdir -p $(@D)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-D_GNU_SOURCE -I. -o $@ $(FUZZ_SRC) -lm -pthread

.PHONY: fuzz
fuzz: build-fuzz/fuzz_experiment
	@rm -rf build-fuzz/corpus && mkdir -p build-fuzz/corpus
	@cp $(wildcard experiments/*.json experiments/examples/*.json tests/bad-experiments/*.json \
		tests/fuzz-regressions/*.json) build-fuzz/corpus/
	@echo "fuzz: $(FUZZ_SECONDS) s of libFuzzer on the experiment parser (log: build-fuzz/fuzz.log)"
	@build-fuzz/fuzz_experiment -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix=build-fuzz/ -print_final_stats=1 \
		build-fuzz/corpus >build-fuzz/fuzz.log 2>&1; rc=$$?; \
		grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' build-fuzz/fuzz.log; \
		if [ $$rc -ne 0 ]; then tail -n 40 build-fuzz/fuzz.log; \
		echo "fuzz: FAILED (exit $$rc); the input is in build-fuzz/ (crash-*, leak-*, timeout-*)"; fi; \
		exit $$rc

bench: $(BENCH_BIN)
	@scripts/deps.sh bench
	scripts/bench.sh $(BUILD)/bench BENCHMARKS.md

# The orchestrator: empty-run wall time, probe overhead, fault apply/revert
# latency, stop-condition-to-revert time, harness RSS (bench/run/*.json).
bench-run: $(if $(NODEPS),,deps-bench-run) $(PROGRAMS)
	scripts/bench-run.py $(BUILD) BENCHMARKS.md

.PHONY: deps-bench-run
deps-bench-run:
	@scripts/deps.sh run bench-run

# Load generator against wrk, on nginx-light and the reference target.
bench-load: $(PROGRAMS)
	@scripts/deps.sh bench-load
	FAULTLINE_BUILD=$(abspath $(BUILD)) scripts/bench-load.sh BENCHMARKS.md

# faultline's main job: one shipped experiment, end to end, against the
# reference target (started and stopped by faultline), printing the verdicts.
RUN_EXPERIMENT ?= experiments/retry-storm.json

run: $(if $(NODEPS),,deps-run) $(PROGRAMS)
	$(BUILD)/faultline run $(RUN_EXPERIMENT)

.PHONY: deps-run
deps-run:
	@scripts/deps.sh run

install: $(CORE_A) $(CORE_SO) $(BUILD)/resilience.pc
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/resilience
	install -m 644 $(CORE_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(CORE_SO) $(DESTDIR)$(PREFIX)/lib/libresilience.so.$(VERSION)
	ln -sf libresilience.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libresilience.so.0
	ln -sf libresilience.so.0 $(DESTDIR)$(PREFIX)/lib/libresilience.so
	install -m 644 $(CORE_HDR) $(DESTDIR)$(PREFIX)/include/resilience/
	install -m 644 $(BUILD)/resilience.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/

FORMAT_FILES = $(sort $(wildcard resilience/*.[ch] tests/*.[ch] bench/*.[ch] \
	harness/*.[ch] injectors/*.[ch] probes/*.[ch] reports/*.[ch] target/*.[ch]))

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@scripts/deps.sh format
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
