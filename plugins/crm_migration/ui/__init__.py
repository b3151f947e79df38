"""The on-call view: an Airflow UI plugin showing each pair's runs, counts, dead letters and reports."""
