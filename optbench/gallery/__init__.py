"""A pathology gallery: published optimizer failures, reproduced, asserted and drawn."""
