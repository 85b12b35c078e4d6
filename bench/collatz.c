/* The longest Collatz chain in 1..n: the algorithm of core/collatz.py in C.
 *
 * Same steps: only starts in (n/2, n] are walked; an odd step is taken with
 * the following halving, (3x + 1) / 2, counted as two terms; lengths of
 * numbers below the memo size (min(n + 1, 2^24), as the workers use) live in
 * a uint16 array filled on the way back from each walk. Ties go to the
 * smallest start.
 *
 * Build and run: gcc -O2 -o collatz collatz.c && ./collatz 10000000 [repeats]
 * Prints one JSON object: n, number, length, seconds (best of the repeats).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MEMO_LIMIT (1u << 24)

static void longest(uint64_t lo, uint64_t hi, uint16_t *memo, uint64_t bound,
                    uint64_t *best, unsigned *best_length) {
    static uint64_t path[4096];
    static unsigned path_steps[4096];
    if (lo < hi / 2 + 1) lo = hi / 2 + 1;
    *best = lo;
    *best_length = 0;
    for (uint64_t k = lo; k <= hi; k++) {
        uint64_t x = k;
        unsigned steps = 0, top = 0;
        while (x >= bound || memo[x] == 0) {
            if (x < bound && top < 4096) {
                path[top] = x;
                path_steps[top] = steps;
                top++;
            }
            if (x & 1) {
                x = (3 * x + 1) >> 1;
                steps += 2;
            } else {
                x >>= 1;
                steps += 1;
            }
        }
        unsigned length = steps + memo[x];
        for (unsigned i = 0; i < top; i++) memo[path[i]] = (uint16_t)(length - path_steps[i]);
        if (length > *best_length) {
            *best = k;
            *best_length = length;
        }
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s n [repeats]\n", argv[0]);
        return 2;
    }
    uint64_t n = strtoull(argv[1], NULL, 10);
    int repeats = argc > 2 ? atoi(argv[2]) : 1;
    if (n < 1 || repeats < 1) return 2;
    uint64_t bound = n + 1 < MEMO_LIMIT ? n + 1 : MEMO_LIMIT;
    double best_seconds = 0;
    uint64_t best = 0;
    unsigned best_length = 0;
    for (int r = 0; r < repeats; r++) {
        double started = now();
        /* A fresh memo each time, as one Python call makes. */
        uint16_t *memo = calloc(bound, sizeof *memo);
        if (memo == NULL) return 1;
        memo[1] = 1;
        longest(1, n, memo, bound, &best, &best_length);
        free(memo);
        double seconds = now() - started;
        if (r == 0 || seconds < best_seconds) best_seconds = seconds;
    }
    printf("{\"n\": %llu, \"number\": %llu, \"length\": %u, \"seconds\": %.6f}\n",
           (unsigned long long)n, (unsigned long long)best, best_length, best_seconds);
    return 0;
}
