/*
 * A sanitized process that misbehaves on request, in a forked child as an
 * nginx worker would, while the parent exits 0: run-checked.sh must fail
 * the run anyway (self_test.sh).
 *
 *   sanitizer_probe clean|overflow|leak|ub
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>
#include <sys/wait.h>


static void *kept;


static int
misbehave(const char *what)
{
    volatile int  big = INT_MAX, sum;
    char         *p;

    if (strcmp(what, "clean") == 0) {
        p = malloc(16);
        free(p);
        return 0;
    }

    if (strcmp(what, "overflow") == 0) {
        p = malloc(16);
        p[16] = 'x';
        free(p);
        return 0;
    }

    if (strcmp(what, "leak") == 0) {
        kept = malloc(64);
        kept = NULL;
        return 0;
    }

    if (strcmp(what, "ub") == 0) {
        sum = big + 1;
        return sum == 0;
    }

    fprintf(stderr, "sanitizer_probe: unknown \"%s\"\n", what);
    return 2;
}


int
main(int argc, char **argv)
{
    pid_t  pid;

    if (argc != 2) {
        fprintf(stderr, "usage: sanitizer_probe clean|overflow|leak|ub\n");
        return 2;
    }

    pid = fork();
    if (pid == -1) {
        perror("fork");
        return 2;
    }

    if (pid == 0) {
        exit(misbehave(argv[1]) == 2 ? 2 : 0);
    }

    (void) waitpid(pid, NULL, 0);
    return 0;
}
