# clinfm build. `make` builds build/clinfm; `make test` installs what is missing, builds a normal
# and an ASan+UBSan variant, runs every test in both, runs the fuzzers briefly, and prints
# "N passed, N failed". `make demo` runs the pipeline on the bundled data.

BUILD   ?= build
CC      ?= cc
SAN     ?= 0
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
              -D_GNU_SOURCE -DCLINFM_WITH_LIBDEFLATE -Isrc -pthread -fopenmp
LIBS    = -lxgboost -lopenblas -lmicrohttpd -lcurl -lsqlite3 -lcrypto -lcjson -lsodium -lpcre2-8 -ldeflate -lz -lm -lpthread
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
LIB_SRC   := $(filter-out src/cli/main.c,$(SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ  := $(BUILD)/obj/src/cli/main.o
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(sort $(wildcard fuzz/fuzz_*.c))

.PHONY: all deps test test-only check-asan fuzz demo bench clean
all: $(BUILD)/clinfm

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libclinfm.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/clinfm: $(MAIN_OBJ) $(BUILD)/libclinfm.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(MPI_LIBS)

$(BUILD)/tests/%: tests/%.c tests/check.h $(BUILD)/libclinfm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests -o $@ $< $(BUILD)/libclinfm.a $(LIBS) $(MPI_LIBS)

tests: $(TEST_BIN)

deps:
	@bash scripts/deps.sh

# Everything: normal build, sanitizer build, fuzzers, then one summary line.
test: deps
	@$(MAKE) --no-print-directory all tests BUILD=build
	@$(MAKE) --no-print-directory all tests BUILD=build-asan SAN=1
	@$(MAKE) --no-print-directory fuzz-build
	@bash tests/run.sh build build-asan

# Fuzz targets: clang + libFuzzer, every source instrumented.
FUZZ_BUILD = build-fuzz
FUZZ_CFLAGS = -std=c11 -g -O1 -D_GNU_SOURCE -DCLINFM_WITH_LIBDEFLATE -Isrc -pthread \
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
demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
