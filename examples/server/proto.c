/* Helpers every protocol adapter uses for its transcript masking. */
#include "proto.h"

#include <string.h>

size_t proto_visible_words(const char *line, size_t len, unsigned words) {
  size_t i = 0;
  for (unsigned w = 0; w < words; w++) {
    while (i < len && line[i] == ' ')
      i++;
    while (i < len && line[i] != ' ')
      i++;
    if (i == len)
      return len;
  }
  return i + 1 <= len ? i + 1 : len;
}

int proto_starts_with_word(const char *line, size_t len, const char *word) {
  size_t n = strlen(word);
  if (len < n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = line[i];
    if (c >= 'a' && c <= 'z')
      c = (char)(c - 'a' + 'A');
    if (c != word[i])
      return 0;
  }
  return len == n || line[n] == ' ' || line[n] == '\r';
}
