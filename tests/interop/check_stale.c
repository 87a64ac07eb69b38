/* Cross-language test, C side of the stale-bindings check (run by tests/tests/interop.rs).
 *
 * Usage: check_stale SEGMENT
 *
 * Built with a shared_types.h generated from an older SensorReading (its first two fields
 * swapped). Looks up the array `readings` (refused: the segment describes the current type)
 * and the queue `jobs` and mutex `lock` (refused: not arrays), printing each status and
 * explanation. Exit 0 when each was refused for the right reason. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared_types.h"

int main(int argc, char **argv) {
    char path[300], why[512];
    struct stat st;
    uint64_t count = 0;
    zeroipc_status status;
    SensorReading *readings;
    void *base;
    int fd, ok = 1;
    if (argc != 2) return 2;
    snprintf(path, sizeof path, "/dev/shm/%s", argv[1][0] == '/' ? argv[1] + 1 : argv[1]);
    fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        return 1;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) return 1;

    readings = zeroipc_lookup_SensorReading(base, (size_t)st.st_size, "readings", &count, &status);
    zeroipc_explain_SensorReading(base, (size_t)st.st_size, "readings", why, sizeof why);
    printf("readings: %s (status %d: %s): %s\n", readings ? "opened" : "refused", (int)status,
           zeroipc_status_text(status), why);
    ok &= readings == NULL && status == ZEROIPC_ERR_LAYOUT;
    /* The size alone still matches: the old lookup, which checks only sizes, accepts it. */
    ok &= zeroipc_find_array(base, (size_t)st.st_size, "readings", sizeof(SensorReading),
                             &count) != NULL && count == 3;

    readings = zeroipc_lookup_SensorReading(base, (size_t)st.st_size, "jobs", &count, &status);
    zeroipc_explain_SensorReading(base, (size_t)st.st_size, "jobs", why, sizeof why);
    printf("jobs: %s (status %d: %s): %s\n", readings ? "opened" : "refused", (int)status,
           zeroipc_status_text(status), why);
    ok &= readings == NULL && status == ZEROIPC_ERR_KIND;

    readings = zeroipc_lookup_SensorReading(base, (size_t)st.st_size, "lock", &count, &status);
    zeroipc_explain_SensorReading(base, (size_t)st.st_size, "lock", why, sizeof why);
    printf("lock: %s (status %d: %s): %s\n", readings ? "opened" : "refused", (int)status,
           zeroipc_status_text(status), why);
    ok &= readings == NULL && status == ZEROIPC_ERR_KIND;

    readings = zeroipc_lookup_SensorReading(base, (size_t)st.st_size, "nope", &count, &status);
    printf("nope: status %d: %s\n", (int)status, zeroipc_status_text(status));
    ok &= readings == NULL && status == ZEROIPC_ERR_NOT_FOUND;
    munmap(base, (size_t)st.st_size);
    return ok ? 0 : 1;
}
