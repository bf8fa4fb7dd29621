#!/usr/bin/env bash
# Model C64's studies (issue 28): scripts/model_c_studies.sh says what runs and what it needs.
#   PDS_INCEPTION=<default_1.pt> bash results/model_c64/run_studies.sh [STUDY ...]
exec bash "$(dirname "$0")/../../scripts/model_c_studies.sh" 64 "$@"
