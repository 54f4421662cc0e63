"""The cluster layout (launch/slurm/train.slurm) rehearsed on one machine, with faults injected:
`faults` kills and restarts its parts at chosen steps, `checks` says whether the run survived,
`command` (`qwqrl rehearse`) runs the rehearsals and writes the report."""
