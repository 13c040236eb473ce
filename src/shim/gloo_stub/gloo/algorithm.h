// Declarations of gloo that c10d's ProcessGroupGloo.hpp needs to compile. The torch wheel
// ships no gloo headers; gloo itself is compiled into libtorch_cpu.so, and our code only
// passes these types around by pointer, never calls into gloo or lays out its objects.
#pragma once
#include "gloo/context.h"
