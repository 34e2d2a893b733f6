/* Recursion: Ackermann, N-queens, mutual recursion, tree building. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "control.h"

unsigned long ackermann(unsigned long m, unsigned long n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

static int queens_place(int n, int row, int *cols, unsigned long *first_sig)
{
    if (row == n) {
        if (*first_sig == 0) {
            unsigned long sig = 0;
            for (int i = 0; i < n; i++)
                sig = sig * 10 + (unsigned long)cols[i] + 1;
            *first_sig = sig;
        }
        return 1;
    }
    int count = 0;
    for (int c = 0; c < n; c++) {
        int ok = 1;
        for (int r = 0; r < row; r++) {
            int d = cols[r] - c;
            if (d == 0 || d == row - r || d == r - row) {
                ok = 0;
                break;
            }
        }
        if (ok) {
            cols[row] = c;
            count += queens_place(n, row + 1, cols, first_sig);
        }
    }
    return count;
}

static unsigned long queens_first;

int queens(int n)
{
    int cols[16];
    queens_first = 0;
    return queens_place(n, 0, cols, &queens_first);
}

static int is_even(unsigned n);
static int is_odd(unsigned n)
{
    return n == 0 ? 0 : is_even(n - 1);
}
static int is_even(unsigned n)
{
    return n == 0 ? 1 : is_odd(n - 1);
}

struct tree {
    int key;
    struct tree *left, *right;
};

static struct tree *tree_insert(struct tree *t, int key)
{
    if (!t) {
        t = malloc(sizeof *t);
        t->key = key;
        t->left = t->right = NULL;
        return t;
    }
    if (key < t->key)
        t->left = tree_insert(t->left, key);
    else if (key > t->key)
        t->right = tree_insert(t->right, key);
    return t;
}

static int tree_height(const struct tree *t)
{
    if (!t)
        return 0;
    int l = tree_height(t->left), r = tree_height(t->right);
    return 1 + (l > r ? l : r);
}

static void tree_walk(const struct tree *t, char *out, size_t *len, size_t cap)
{
    if (!t)
        return;
    tree_walk(t->left, out, len, cap);
    if (*len + 5 < cap)
        *len += (size_t)snprintf(out + *len, cap - *len, "%d ", t->key);
    tree_walk(t->right, out, len, cap);
}

static void tree_free(struct tree *t)
{
    if (!t)
        return;
    tree_free(t->left);
    tree_free(t->right);
    free(t);
}

/* permutations by recursive swapping */
static int permute(char *s, int k, int n, unsigned long *h)
{
    if (k == n) {
        for (int i = 0; i < n; i++)
            *h = *h * 31 + (unsigned char)s[i];
        return 1;
    }
    int c = 0;
    for (int i = k; i < n; i++) {
        char t = s[k]; s[k] = s[i]; s[i] = t;
        c += permute(s, k + 1, n, h);
        t = s[k]; s[k] = s[i]; s[i] = t;
    }
    return c;
}

int test_recursion(void)
{
    int total = 0;
    printf("== recursion ==\n");
    for (unsigned long m = 0; m <= 3; m++) {
        printf("  ack(%lu, n):", m);
        for (unsigned long n = 0; n <= 4; n++) {
            unsigned long a = ackermann(m, n);
            printf(" %lu", a);
            total += (int)a;
        }
        printf("\n");
    }
    for (int n = 1; n <= 8; n++) {
        int q = queens(n);
        printf("  queens(%d) = %d first=%lu\n", n, q, queens_first);
        total += q;
    }
    printf("  is_even(10001)=%d is_odd(777)=%d\n", is_even(10001), is_odd(777));
    struct tree *root = NULL;
    unsigned seed = 42;
    for (int i = 0; i < 40; i++) {
        seed = seed * 1103515245u + 12345u;
        root = tree_insert(root, (int)((seed >> 16) % 100));
    }
    char out[512];
    size_t len = 0;
    out[0] = 0;
    tree_walk(root, out, &len, sizeof out);
    printf("  tree height=%d inorder: %s\n", tree_height(root), out);
    total += tree_height(root);
    tree_free(root);
    char word[] = "abcdef";
    unsigned long h = 0;
    int perms = permute(word, 0, (int)strlen(word), &h);
    printf("  permutations=%d hash=%lu\n", perms, h);
    total += perms;
    return total;
}
