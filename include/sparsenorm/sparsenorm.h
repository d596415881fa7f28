// The whole public interface of sparsenorm.
#ifndef SPARSENORM_SPARSENORM_H_
#define SPARSENORM_SPARSENORM_H_

#include "sparsenorm/caffe2.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/sharded.h"
#include "sparsenorm/sharded_step.h"
#include "sparsenorm/types.h"
#include "sparsenorm/version.h"

#endif  // SPARSENORM_SPARSENORM_H_
