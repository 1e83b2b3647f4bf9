# clinfm build. `make` builds build/clinfm; `make test` installs what is missing, builds a normal
# and an ASan+UBSan variant, runs every test in both, runs the fuzzers briefly, and prints
# "N passed, N failed". `make demo` runs the whole path (synth -> ingest -> deid -> train -> eval
# -> serve -> a card -> feedback -> audit verify) on generated patients; `make demo DATA=real` on
# the MIMIC-IV demo and Synthea from $CLINFM_DATA.

BUILD   ?= build
CC      ?= cc
SAN     ?= 0
OPT     ?= -O2
PREFIX  ?= /usr/local
# -Werror for development and CI (`make test` sets it); a user's `make` only warns.
WERROR  ?=
CFLAGS_BASE = -std=c11 -g -Wall -Wextra $(WERROR) -Wshadow -Wno-unused-parameter \
              -D_GNU_SOURCE -DCLINFM_WITH_LIBDEFLATE -DCLINFM_WITH_DNNL -Isrc -pthread -fopenmp
# oneDNN (libdnnl-dev) gives the model its AVX-512 matrix products (src/model/gpt_kernels.c);
# without -DCLINFM_WITH_DNNL the model runs on OpenBLAS alone.
LIBS    = -lxgboost -lopenblas -ldnnl -lmicrohttpd -lcurl -lsqlite3 -lcrypto -lcjson -lsodium -lpcre2-8 -ldeflate -lzstd -lz -lm -lpthread
# Open MPI (libopenmpi-dev) for data-parallel training, src/model/dist.c; kept out of LIBS so a
# LIBS given on the command line still links. MPI_Init runs only under mpirun/mpiexec.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null)

ifeq ($(SAN),1)
  OPT = -O1
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(MPI_CFLAGS) $(OPT) $(CFLAGS)

SRC       := $(sort $(shell find src -name '*.c'))
# libclinfm.a is the library (the stages) with no command-line code; src/cli/ (main.c and the
# cmd_*.c commands) sits on top of it and is linked into the binary only.
LIB_SRC   := $(filter-out src/cli/%,$(SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter src/cli/%,$(SRC)))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(sort $(wildcard fuzz/fuzz_*.c))

.PHONY: all tests deps test fuzz-build demo bench install install-share clean
all: $(BUILD)/clinfm

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The model's kernels never read errno; without it gcc vectorises sqrtf (AdamW, LayerNorm).
$(BUILD)/obj/src/model/gpt_kernels.o: ALL_CFLAGS += -fno-math-errno

# Where the binary finds its shipped files (rules, tasks, mappings) when nothing else says:
# this checkout for a development build; `make install` compiles in PREFIX/share/clinfm.
SHAREDIR ?= $(CURDIR)
$(BUILD)/obj/src/util/datadir.o: ALL_CFLAGS += -DCLINFM_SHAREDIR='"$(SHAREDIR)"'

$(BUILD)/libclinfm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/clinfm: $(MAIN_OBJ) $(BUILD)/libclinfm.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(MPI_LIBS)

$(BUILD)/tests/%: tests/%.c tests/check.h $(BUILD)/libclinfm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests -o $@ $< $(BUILD)/libclinfm.a $(LIBS) $(MPI_LIBS)

# The benchmarks are not run by `make test`, but they must keep compiling and linking: every
# bench/*.c is built against the library as the tests are (about 7 s in all).
BENCH_CHECK := $(patsubst bench/%.c,$(BUILD)/bench-check/%,$(sort $(wildcard bench/*.c)))
$(BUILD)/bench-check/%: bench/%.c tests/loopback.h $(BUILD)/libclinfm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -O0 -o $@ $< $(BUILD)/libclinfm.a $(LIBS) $(MPI_LIBS)

tests: $(TEST_BIN) $(BENCH_CHECK)

# The builds that `make test`, `demo`, `bench` and `install` start use every core.
JOBS ?= -j$(shell nproc 2>/dev/null || echo 2)
deps:
	@bash scripts/deps.sh

# Everything: normal build, sanitizer build, fuzzers, then one summary line.
test: deps
	@$(MAKE) $(JOBS) --no-print-directory all tests BUILD=build WERROR=-Werror
	@$(MAKE) $(JOBS) --no-print-directory all tests BUILD=build-asan SAN=1 WERROR=-Werror
	@$(MAKE) $(JOBS) --no-print-directory fuzz-build
	@bash tests/run.sh build build-asan

# Fuzz targets: clang + libFuzzer, every source instrumented.
FUZZ_BUILD = build-fuzz
FUZZ_CFLAGS = -std=c11 -g -O1 -D_GNU_SOURCE -DCLINFM_WITH_LIBDEFLATE -DCLINFM_WITH_DNNL -Isrc -pthread \
              -fsanitize=fuzzer-no-link,address,undefined $(MPI_CFLAGS)
FUZZ_LIB_OBJ = $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/libclinfm.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
# Each target links the archive, so it pulls in only the objects it uses.
$(FUZZ_BUILD)/%: fuzz/%.c $(FUZZ_BUILD)/libclinfm.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS) $(MPI_LIBS)
fuzz-build: $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)

# The flags above (Open MPI's) are read when make parses this file, so a target that first
# installs the dependencies builds through a fresh make that sees them.
# DEMO_GOAL lets tests/cli/makefile_fresh.sh build one object instead of everything.
DEMO_GOAL ?= all
demo: deps
	@$(MAKE) $(JOBS) --no-print-directory $(DEMO_GOAL)
	@DATA='$(DATA)' bash scripts/demo.sh

bench: deps
	@$(MAKE) $(JOBS) --no-print-directory all
	@bash bench/run.sh

# `make install PREFIX=/opt/clinfm [DESTDIR=...]`: the binary in PREFIX/bin and the shipped
# files (de-identification rules, synth modules, task files, mapping files) in PREFIX/share/clinfm, which the
# binary finds without flags. A separate build folder, so the compiled-in folder is PREFIX's.
INSTALL_BUILD = build-install
install: deps
	@$(MAKE) $(JOBS) --no-print-directory all BUILD=$(INSTALL_BUILD) SHAREDIR=$(PREFIX)/share/clinfm
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(INSTALL_BUILD)/clinfm $(DESTDIR)$(PREFIX)/bin/clinfm
	@$(MAKE) --no-print-directory install-share
install-share:
	install -d $(DESTDIR)$(PREFIX)/share/clinfm/data $(DESTDIR)$(PREFIX)/share/clinfm/tasks \
	  $(DESTDIR)$(PREFIX)/share/clinfm/mappings
	for d in data/*/; do rm -rf $(DESTDIR)$(PREFIX)/share/clinfm/$$d; cp -R $$d $(DESTDIR)$(PREFIX)/share/clinfm/data/; done
	install -m 0644 tasks/*.task $(DESTDIR)$(PREFIX)/share/clinfm/tasks/
	install -m 0644 mappings/*.map mappings/*.csv $(DESTDIR)$(PREFIX)/share/clinfm/mappings/

clean:
	rm -rf build build-asan build-fuzz build-install

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
