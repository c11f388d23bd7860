#include <gtest/gtest.h>
TEST(ChatTemplate, Placeholder) { SUCCEED(); }
