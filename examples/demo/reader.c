#define _POSIX_C_SOURCE 200809L
/* The demo's C side: map the segment, find the readings with the generated header, print them
 * and acknowledge them. Usage: reader SEGMENT */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared_types.h"

int main(int argc, char **argv) {
    char path[300];
    struct stat st;
    uint64_t count = 0, i;
    zeroipc_status status;
    Reading *readings;
    void *base;
    int fd;
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEGMENT\n", argv[0]);
        return 2;
    }
    snprintf(path, sizeof path, "/dev/shm/%s", argv[1][0] == '/' ? argv[1] + 1 : argv[1]);
    fd = open(path, O_RDWR | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        return 1;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    /* Checks the segment's description of `readings` too: stale bindings are refused. */
    readings = zeroipc_lookup_Reading(base, (size_t)st.st_size, "readings", &count, &status);
    if (readings == NULL) {
        char why[512];
        zeroipc_explain_Reading(base, (size_t)st.st_size, "readings", why, sizeof why);
        fprintf(stderr, "c: %s\n", why);
        return 1;
    }
    printf("c: %llu readings, sizeof(Reading) = %zu\n", (unsigned long long)count, sizeof(Reading));
    for (i = 0; i < count; i++) {
        Reading *r = &readings[i];
        printf("c:   station %u: %.1f C, %.0f %%, acknowledged %u\n", r->station, (double)r->temperature,
               (double)r->humidity, r->acknowledged);
        r->acknowledged += 1;
        r->wind[2] = 0.0f;
    }
    printf("c: acknowledged all, cleared vertical wind\n");
    munmap(base, (size_t)st.st_size);
    return 0;
}
