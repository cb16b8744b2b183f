// Whole-model comparison for `qvl compare` (see compare_model.h).
#include "engine/compare_model.h"

#include "kernels/base.h"

namespace qvl {

CompareReport compare_model(const ModelCompareOptions& o) {
  throw Error("compare: model comparison needs the session (not landed yet); use --kernels");
}

}  // namespace qvl
