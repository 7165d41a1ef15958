/* The heap sort of core/sort.h: every size of array, elements of whole
 * words and of words and bytes (the swap moves words, then bytes), the
 * context reaching the comparison, the same order as qsort. */
#include <stdlib.h>
#include <string.h>

#include "core/sort.h"
#include "suites.h"

typedef struct wide {
  uint32_t key;
  unsigned char pad[100]; /* 104 bytes: whole words */
} wide;

static int by_key(const void *a, const void *b, const void *ctx) {
  int sign = *(const int *)ctx; /* 1 ascending, -1 descending */
  uint32_t x = ((const wide *)a)->key, y = ((const wide *)b)->key;
  return sign * ((x > y) - (x < y));
}

static int by_key_qsort(const void *a, const void *b) {
  static const int up = 1;
  return by_key(a, b, &up);
}

START_TEST(test_heap_sort_matches_qsort) {
  enum { MAX = 300 };
  static wide mine[MAX], ref[MAX];
  uint32_t seed = 12345;
  for (size_t n = 0; n < MAX; n += n < 20 ? 1 : 37) {
    for (size_t i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      mine[i].key = (seed >> 16) % (n / 2 + 1); /* duplicates too */
      memset(mine[i].pad, (int)(mine[i].key & 0xff), sizeof mine[i].pad);
    }
    memcpy(ref, mine, n * sizeof *mine);
    int up = 1;
    mailproto_heap_sort(mine, n, sizeof *mine, by_key, &up);
    qsort(ref, n, sizeof *ref, by_key_qsort);
    for (size_t i = 0; i < n; i++) {
      ck_assert_uint_eq(mine[i].key, ref[i].key);
      /* Elements move whole: the padding went with its key. */
      ck_assert_uint_eq(mine[i].pad[99], mine[i].key & 0xff);
    }
    int down = -1;
    mailproto_heap_sort(mine, n, sizeof *mine, by_key, &down);
    for (size_t i = 0; i + 1 < n; i++)
      ck_assert_uint_ge(mine[i].key, mine[i + 1].key);
  }
}
END_TEST

static int bytes_up(const void *a, const void *b, const void *ctx) {
  (void)ctx;
  return *(const unsigned char *)a - *(const unsigned char *)b;
}

START_TEST(test_heap_sort_single_bytes) {
  char s[] = "heapsort";
  mailproto_heap_sort(s, strlen(s), 1, bytes_up, NULL);
  ck_assert_str_eq(s, "aehoprst");
}
END_TEST

/* Elements of 11 bytes (a word and three bytes): the first byte is the
 * key, every byte holds it. */
START_TEST(test_heap_sort_odd_element_size) {
  enum { N = 50, E = 11 };
  unsigned char a[N * E];
  for (size_t i = 0; i < N; i++)
    memset(a + i * E, (int)((i * 37) % N), E);
  mailproto_heap_sort(a, N, E, bytes_up, NULL);
  for (size_t i = 0; i < N; i++)
    for (size_t k = 0; k < E; k++)
      ck_assert_uint_eq(a[i * E + k], i);
}
END_TEST

Suite *suite_core_sort(void) {
  Suite *s = suite_create("core_sort");
  TCase *tc = tcase_create("sort");
  tcase_add_test(tc, test_heap_sort_matches_qsort);
  tcase_add_test(tc, test_heap_sort_single_bytes);
  tcase_add_test(tc, test_heap_sort_odd_element_size);
  suite_add_tcase(s, tc);
  return s;
}
