#include "kernels/ref/quants.h"
