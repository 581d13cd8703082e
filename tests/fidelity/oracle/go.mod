module hnc/fidelity-oracle

go 1.19
