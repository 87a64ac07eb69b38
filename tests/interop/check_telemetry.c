/* Cross-language test, C side (run by tests/tests/interop.rs).
 *
 * Usage: check_telemetry SEGMENT
 *
 * Built with the generated shared_types.h (gcc -std=c11 -Wall -Wextra -Werror -Wpadded). Checks
 * every field of the Telemetry records and the scalar arrays Rust wrote (Telemetry::nth in
 * tests/src/types.rs), then writes Telemetry::updated(i, "c") values and updates the scalars. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared_types.h"

static int failures = 0;

#define EXPECT(cond, ...)                  \
    do {                                   \
        if (!(cond)) {                     \
            printf("mismatch: " __VA_ARGS__); \
            printf("\n");                  \
            failures++;                    \
        }                                  \
    } while (0)

int main(int argc, char **argv) {
    char path[300], label[9];
    struct stat st;
    uint64_t n = 0, nd = 0, ni = 0, i, k;
    Telemetry *recs;
    double *doubles;
    int32_t *ints;
    void *base;
    int fd;
    if (argc != 2) return 2;
    snprintf(path, sizeof path, "/dev/shm/%s", argv[1][0] == '/' ? argv[1] + 1 : argv[1]);
    fd = open(path, O_RDWR | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        return 1;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return 1;
    recs = (Telemetry *)zeroipc_find_array(base, (size_t)st.st_size, "telemetry", sizeof(Telemetry), &n);
    doubles = (double *)zeroipc_find_array(base, (size_t)st.st_size, "doubles", sizeof(double), &nd);
    ints = (int32_t *)zeroipc_find_array(base, (size_t)st.st_size, "ints", sizeof(int32_t), &ni);
    if (!recs || !doubles || !ints || n != 5 || nd != 6 || ni != 4) {
        printf("arrays not found or wrong length: %llu %llu %llu\n", (unsigned long long)n,
               (unsigned long long)nd, (unsigned long long)ni);
        return 1;
    }
    /* A wrong element size is refused. */
    EXPECT(zeroipc_find_array(base, (size_t)st.st_size, "telemetry", sizeof(Telemetry) + 8, &k) == NULL,
           "telemetry opened with the wrong element size");
    for (i = 0; i < n; i++) {
        const Telemetry *r = &recs[i];
        float f = (float)i;
        EXPECT(r->position.x == f && r->position.y == f + 0.5f && r->position.z == -f, "[%llu].position", (unsigned long long)i);
        EXPECT(r->flags == (uint8_t)(i + 1), "[%llu].flags", (unsigned long long)i);
        EXPECT(r->level == -(int8_t)i, "[%llu].level", (unsigned long long)i);
        EXPECT(r->channel == 1000 + i, "[%llu].channel", (unsigned long long)i);
        EXPECT(r->quality == -100 * (int16_t)i, "[%llu].quality", (unsigned long long)i);
        EXPECT(r->count == 7 * i, "[%llu].count", (unsigned long long)i);
        EXPECT(r->delta == -3 * (int32_t)i, "[%llu].delta", (unsigned long long)i);
        EXPECT(r->gain == 0.25f * f, "[%llu].gain", (unsigned long long)i);
        EXPECT(r->serial == (UINT64_C(1) << 40) + i, "[%llu].serial", (unsigned long long)i);
        EXPECT(r->offset == -(INT64_C(1) << 33) - (int64_t)i, "[%llu].offset", (unsigned long long)i);
        EXPECT(r->value == 1.5 * (double)i, "[%llu].value", (unsigned long long)i);
        for (k = 0; k < 4; k++) {
            EXPECT(r->samples[k] == 0.5f * f + 0.5f * (float)k, "[%llu].samples[%llu]", (unsigned long long)i, (unsigned long long)k);
        }
        snprintf(label, sizeof label, "rec%llu", (unsigned long long)i);
        EXPECT(strncmp((const char *)r->label, label, 8) == 0, "[%llu].label", (unsigned long long)i);
    }
    for (k = 0; k < nd; k++) EXPECT(doubles[k] == 0.5 * (double)k - 1.0, "doubles[%llu]", (unsigned long long)k);
    for (k = 0; k < ni; k++) EXPECT(ints[k] == -3 + 7 * (int32_t)k, "ints[%llu]", (unsigned long long)k);
    if (failures) return 1;
    for (i = 0; i < n; i++) {
        Telemetry *r = &recs[i];
        r->count = 1000 + (uint32_t)i;
        r->value = -2.5 * (double)i;
        for (k = 0; k < 4; k++) r->samples[k] = 10.0f * (float)i + (float)k;
        r->position.z = 100.0f + (float)i;
        memset(r->label, 0, sizeof r->label);
        snprintf(label, sizeof label, "c%llu", (unsigned long long)i);
        memcpy(r->label, label, strlen(label));
    }
    for (k = 0; k < nd; k++) doubles[k] += 1.0;
    for (k = 0; k < ni; k++) ints[k] *= 2;
    printf("c: checked %llu records, %llu doubles, %llu ints; wrote updates\n", (unsigned long long)n,
           (unsigned long long)nd, (unsigned long long)ni);
    munmap(base, (size_t)st.st_size);
    return 0;
}
