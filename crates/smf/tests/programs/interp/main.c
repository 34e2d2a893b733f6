/*
 * main.c - command line driver: runs the SL script named by argv[1].
 * The process exit status is the script's integer result & 0x7f (or a
 * hash of everything printed when the script returns a non-integer).
 */
#include <stdlib.h>
#include <string.h>

#include "sl.h"

static char *read_file(const char *path, size_t *size_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (len + 1024 + 1 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        free(buf);
        return NULL;
    }
    *size_out = len;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: %s script.sl\n", argc > 0 ? argv[0] : "sl");
        return 2;
    }
    size_t size = 0;
    char *source = read_file(argv[1], &size);
    if (!source) {
        printf("cannot read script\n");
        return 3;
    }
    VM *vm = vm_new();
    Value result;
    /* the script name is fixed so that nothing depends on the path */
    SlStatus status = vm_interpret(vm, source, "script", &result);
    int code;
    if (status != SL_OK) {
        code = (int)status;
    } else if (IS_INT(result)) {
        code = (int)(result.as.integer & 0x7f);
    } else {
        code = (int)(vm->output_hash & 0x7f);
    }
    printf("[sl] status=%d output_bytes=%ld exit=%d\n", (int)status, vm->output_bytes, code);
    vm_free(vm);
    free(source);
    return code;
}
