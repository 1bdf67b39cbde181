"""E-commerce: the sandbox store and its orders, the purchase outcome (mailchimp.md §7)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, handler, ok
from leadsync.sandbox.mailchimp.shapes import fmt_time, page_params
from leadsync.sandbox.mailchimp.state import Order

__all__ = ["routes"]


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state

    def render_order(o: Order) -> dict[str, Any]:
        return {
            "id": o.id,
            "store_id": o.store_id,
            "customer": {
                "id": o.customer_id,
                "email_address": o.email,
                "opt_in_status": True,
                "company": "",
                "first_name": o.first_name,
                "last_name": o.last_name,
                "orders_count": sum(1 for x in state.orders if x.customer_id == o.customer_id),
                "total_spent": round(sum(x.total for x in state.orders if x.customer_id == o.customer_id), 2),
                "created_at": fmt_time(o.processed_at),
                "updated_at": fmt_time(o.processed_at),
            },
            "campaign_id": o.campaign_id,
            "landing_site": "",
            "financial_status": "paid",
            "fulfillment_status": "",
            "currency_code": o.currency,
            "order_total": o.total,
            "order_url": "",
            "discount_total": 0,
            "tax_total": 0,
            "shipping_total": 0,
            "tracking_code": "prec",
            "processed_at_foreign": fmt_time(o.processed_at),
            "cancelled_at_foreign": "",
            "updated_at_foreign": fmt_time(o.processed_at),
            "lines": [
                {
                    "id": f"{o.id}-1",
                    "product_id": "sandbox-product",
                    "product_title": o.product,
                    "product_variant_id": "sandbox-variant",
                    "product_variant_title": o.product,
                    "image_url": "",
                    "quantity": 1,
                    "price": o.total,
                    "discount": 0,
                }
            ],
            "promos": [],
            "_links": [],
        }

    def page_of(orders: list[Order], request: web.Request) -> dict[str, Any]:
        count, offset = page_params(request.query)
        q = request.query
        if q.get("campaign_id"):
            orders = [o for o in orders if o.campaign_id == q["campaign_id"]]
        if q.get("customer_id"):
            orders = [o for o in orders if o.customer_id == q["customer_id"]]
        return {
            "orders": [render_order(o) for o in orders[offset : offset + count]],
            "total_items": len(orders),
        }

    def list_stores(request: web.Request, _: bytes) -> web.Response:
        count, offset = page_params(request.query)
        stores = [
            {
                "id": s["id"],
                "list_id": s["list_id"],
                "name": s["name"],
                "platform": "leadsync-sandbox",
                "domain": "shop.leadsync.invalid",
                "is_syncing": False,
                "email_address": "shop@leadsync.invalid",
                "currency_code": "USD",
                "money_format": "$",
                "primary_locale": "en",
                "timezone": "UTC",
                "phone": "",
                "created_at": fmt_time(s["created_at"]),
                "updated_at": fmt_time(s["created_at"]),
                "_links": [],
            }
            for s in state.stores.values()
        ]
        return ok(
            {"stores": stores[offset : offset + count], "total_items": len(stores), "_links": []},
            request.query,
        )

    def account_orders(request: web.Request, _: bytes) -> web.Response:
        return ok({**page_of(list(state.orders), request), "_links": []}, request.query)

    def store_orders(request: web.Request, _: bytes) -> web.Response:
        store_id = request.match_info["store_id"]
        if store_id not in state.stores:
            raise BadRequest(404, "The requested resource could not be found.")
        body = page_of([o for o in state.orders if o.store_id == store_id], request)
        return ok({**body, "store_id": store_id, "_links": []}, request.query)

    return [
        web.get("/3.0/ecommerce/stores", handler(api, list_stores)),
        web.get("/3.0/ecommerce/orders", handler(api, account_orders)),
        web.get("/3.0/ecommerce/stores/{store_id}/orders", handler(api, store_orders)),
    ]
