"""Statistics behind Perfboard's answers, over plain data: no Django here (Perfherder's ``perfalert`` is the model).

vocabulary   compute units, load kinds, statuses, the metric registry and the one version order
settings     every threshold (PolicySettings, DetectionSettings, ComparisonSettings), fed from Django settings
intervals    Wilson and bootstrap intervals, honest with small samples
policy       which compute unit per device, fallback chain, back-off, break-even
comparison   A/B comparison of loading or warm-up variants
detection    slowdowns, failure-rate increases and Neural Engine placement shifts between versions
summary      one run's warm-prediction summary
"""
