"""E-commerce: the sandbox store, its orders (the purchase outcome) and its abandoned carts
(mailchimp.md §7; the spec's ``/ecommerce/stores/{store_id}``, ``…/orders``, ``…/carts``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, handler, ok
from leadsync.sandbox.mailchimp.shapes import fmt_time, page_params
from leadsync.sandbox.mailchimp.state import Cart, Order

__all__ = ["routes"]


def routes(api: Api) -> list[web.RouteDef]:
    state = api.state

    def render_customer(item: Order | Cart) -> dict[str, Any]:
        mine = [x for x in state.orders if x.customer_id == item.customer_id]
        first_seen = min(
            [x.processed_at for x in mine]
            + [c.created_at for c in state.carts if c.customer_id == item.customer_id]
        )
        return {
            "id": item.customer_id,
            "email_address": item.email,
            "opt_in_status": True,
            "company": "",
            "first_name": item.first_name,
            "last_name": item.last_name,
            "orders_count": len(mine),
            "total_spent": round(sum(x.total for x in mine), 2),
            "created_at": fmt_time(first_seen),
            "updated_at": fmt_time(first_seen),
        }

    def render_order(o: Order) -> dict[str, Any]:
        return {
            "id": o.id,
            "store_id": o.store_id,
            "customer": render_customer(o),
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

    def render_cart(c: Cart) -> dict[str, Any]:
        return {
            "id": c.id,
            "customer": render_customer(c),
            "campaign_id": c.campaign_id,
            "checkout_url": f"https://shop.leadsync.invalid/checkout/{c.id}",
            "currency_code": c.currency,
            "order_total": c.total,
            "tax_total": 0,
            "lines": [
                {
                    "id": f"{c.id}-1",
                    "product_id": "sandbox-product",
                    "product_title": c.product,
                    "product_variant_id": "sandbox-variant",
                    "product_variant_title": c.product,
                    "image_url": "",
                    "quantity": 1,
                    "price": c.total,
                }
            ],
            "created_at": fmt_time(c.created_at),
            "updated_at": fmt_time(c.updated_at),
            "_links": [],
        }

    def store_or_404(store_id: str) -> dict[str, Any]:
        if store_id not in state.stores:
            raise BadRequest(404, "The requested resource could not be found.")
        return state.stores[store_id]

    def render_store(s: dict[str, Any]) -> dict[str, Any]:
        return {
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

    def list_stores(request: web.Request, _: bytes) -> web.Response:
        count, offset = page_params(request.query)
        stores = [render_store(s) for s in state.stores.values()]
        return ok(
            {"stores": stores[offset : offset + count], "total_items": len(stores), "_links": []},
            request.query,
        )

    def account_orders(request: web.Request, _: bytes) -> web.Response:
        return ok({**page_of(list(state.orders), request), "_links": []}, request.query)

    def store_orders(request: web.Request, _: bytes) -> web.Response:
        store_id = request.match_info["store_id"]
        store_or_404(store_id)
        body = page_of([o for o in state.orders if o.store_id == store_id], request)
        return ok({**body, "store_id": store_id, "_links": []}, request.query)

    def store_order(request: web.Request, _: bytes) -> web.Response:
        store_or_404(request.match_info["store_id"])
        for o in state.orders:
            if o.store_id == request.match_info["store_id"] and o.id == request.match_info["order_id"]:
                return ok(render_order(o), request.query)
        raise BadRequest(404, "The requested resource could not be found.")

    def get_store(request: web.Request, _: bytes) -> web.Response:
        return ok(render_store(store_or_404(request.match_info["store_id"])), request.query)

    def store_carts(request: web.Request, _: bytes) -> web.Response:
        store_id = request.match_info["store_id"]
        store_or_404(store_id)
        count, offset = page_params(request.query)
        carts = [c for c in state.carts if c.store_id == store_id]
        return ok(
            {
                "store_id": store_id,
                "carts": [render_cart(c) for c in carts[offset : offset + count]],
                "total_items": len(carts),
                "_links": [],
            },
            request.query,
        )

    def store_cart(request: web.Request, _: bytes) -> web.Response:
        store_or_404(request.match_info["store_id"])
        for c in state.carts:
            if c.store_id == request.match_info["store_id"] and c.id == request.match_info["cart_id"]:
                return ok(render_cart(c), request.query)
        raise BadRequest(404, "The requested resource could not be found.")

    base = "/3.0/ecommerce/stores/{store_id}"
    return [
        web.get("/3.0/ecommerce/stores", handler(api, list_stores)),
        web.get("/3.0/ecommerce/orders", handler(api, account_orders)),
        web.get(base, handler(api, get_store)),
        web.get(base + "/orders", handler(api, store_orders)),
        web.get(base + "/orders/{order_id}", handler(api, store_order)),
        web.get(base + "/carts", handler(api, store_carts)),
        web.get(base + "/carts/{cart_id}", handler(api, store_cart)),
    ]
