"""A preset becomes an experiment here: what a preset's tables may hold (schema), where presets are found and
read (presets), `--set` overrides, `[sweep]` expansion, the `[lr_range]` table, and the resolved, validated
experiment (experiment) that everything downstream runs from; tomlwrite writes it back as config.toml."""
