"""Link app (REST API) -> Odoo CRM: the Airflow DAGs plan, migrate, delta and rollback, built from include/pairs/link_app_to_odoo.yaml."""

from crm_migration.dag_factory import build_pair_dags

globals().update(build_pair_dags("link_app_to_odoo"))
