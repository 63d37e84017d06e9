//! zachetka-projections: placeholder
