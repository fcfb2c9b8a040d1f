//! The ITCH 5.0 message table: every type's byte, length, names and fields
//! (name, kind, wire offset), as in NASDAQ TotalView-ITCH 5.0, section 4.
//! Everything about messages is generated from this one table
//! (see `define.rs`); the offsets are checked at compile time.
//!
//! Every message starts with the 11-byte header: type (1), stock locate
//! (u16), tracking number (u16), timestamp (6 bytes, ns since midnight).

itch_messages! {
    /// System Event (4.1): start/end of messages, system hours, market hours.
    SystemEvent = b'S', 12, "system_event", SYSTEM_EVENT {
        event_code: char @ 11,
    }
    /// Stock Directory (4.2.1): one per security at the start of the day.
    StockDirectory = b'R', 39, "stock_directory", STOCK_DIRECTORY {
        stock: ascii(8) @ 11,
        market_category: char @ 19,
        financial_status_indicator: char @ 20,
        round_lot_size: u32 @ 21,
        round_lots_only: char @ 25,
        issue_classification: char @ 26,
        issue_sub_type: ascii(2) @ 27,
        authenticity: char @ 29,
        short_sale_threshold_indicator: char @ 30,
        ipo_flag: char @ 31,
        luld_reference_price_tier: char @ 32,
        etp_flag: char @ 33,
        etp_leverage_factor: u32 @ 34,
        inverse_indicator: char @ 38,
    }
    /// Stock Trading Action (4.2.2): halted, paused, quotation only, trading.
    StockTradingAction = b'H', 25, "stock_trading_action", STOCK_TRADING_ACTION {
        stock: ascii(8) @ 11,
        trading_state: char @ 19,
        reserved: char @ 20,
        reason: ascii(4) @ 21,
    }
    /// Reg SHO Short Sale Price Test Restricted Indicator (4.2.3).
    RegShoRestriction = b'Y', 20, "reg_sho_restriction", REG_SHO_RESTRICTION {
        stock: ascii(8) @ 11,
        reg_sho_action: char @ 19,
    }
    /// Market Participant Position (4.2.4).
    MarketParticipantPosition = b'L', 26, "market_participant_position", MARKET_PARTICIPANT_POSITION {
        mpid: ascii(4) @ 11,
        stock: ascii(8) @ 15,
        primary_market_maker: char @ 23,
        market_maker_mode: char @ 24,
        market_participant_state: char @ 25,
    }
    /// MWCB Decline Level (4.2.5.1): the three circuit-breaker levels.
    MwcbDeclineLevel = b'V', 35, "mwcb_decline_level", MWCB_DECLINE_LEVEL {
        level1: price8 @ 11,
        level2: price8 @ 19,
        level3: price8 @ 27,
    }
    /// MWCB Status (4.2.5.2): a circuit-breaker level was breached.
    MwcbStatus = b'W', 12, "mwcb_status", MWCB_STATUS {
        breached_level: char @ 11,
    }
    /// IPO Quoting Period Update (4.2.6); the release time is in seconds
    /// since midnight.
    IpoQuotingPeriodUpdate = b'K', 28, "ipo_quoting_period_update", IPO_QUOTING_PERIOD_UPDATE {
        stock: ascii(8) @ 11,
        ipo_quotation_release_time: u32 @ 19,
        ipo_quotation_release_qualifier: char @ 23,
        ipo_price: price4 @ 24,
    }
    /// LULD Auction Collar (4.2.7).
    LuldAuctionCollar = b'J', 35, "luld_auction_collar", LULD_AUCTION_COLLAR {
        stock: ascii(8) @ 11,
        auction_collar_reference_price: price4 @ 19,
        upper_auction_collar_price: price4 @ 23,
        lower_auction_collar_price: price4 @ 27,
        auction_collar_extension: u32 @ 31,
    }
    /// Operational Halt (4.2.8).
    OperationalHalt = b'h', 21, "operational_halt", OPERATIONAL_HALT {
        stock: ascii(8) @ 11,
        market_code: char @ 19,
        operational_halt_action: char @ 20,
    }
    /// Add Order, no MPID attribution (4.3.1).
    AddOrder = b'A', 36, "add_order", ADD_ORDER {
        order_reference_number: u64 @ 11,
        buy_sell_indicator: char @ 19,
        shares: u32 @ 20,
        stock: ascii(8) @ 24,
        price: price4 @ 32,
    }
    /// Add Order with MPID attribution (4.3.2).
    AddOrderMpid = b'F', 40, "add_order_mpid", ADD_ORDER_MPID {
        order_reference_number: u64 @ 11,
        buy_sell_indicator: char @ 19,
        shares: u32 @ 20,
        stock: ascii(8) @ 24,
        price: price4 @ 32,
        attribution: ascii(4) @ 36,
    }
    /// Order Executed (4.4.1): at the order's own price.
    OrderExecuted = b'E', 31, "order_executed", ORDER_EXECUTED {
        order_reference_number: u64 @ 11,
        executed_shares: u32 @ 19,
        match_number: u64 @ 23,
    }
    /// Order Executed With Price (4.4.2): at a price other than the order's.
    OrderExecutedWithPrice = b'C', 36, "order_executed_with_price", ORDER_EXECUTED_WITH_PRICE {
        order_reference_number: u64 @ 11,
        executed_shares: u32 @ 19,
        match_number: u64 @ 23,
        printable: char @ 31,
        execution_price: price4 @ 32,
    }
    /// Order Cancel (4.4.3): part of an order's shares cancelled.
    OrderCancel = b'X', 23, "order_cancel", ORDER_CANCEL {
        order_reference_number: u64 @ 11,
        cancelled_shares: u32 @ 19,
    }
    /// Order Delete (4.4.4): the whole remaining order cancelled.
    OrderDelete = b'D', 19, "order_delete", ORDER_DELETE {
        order_reference_number: u64 @ 11,
    }
    /// Order Replace (4.4.5): cancel the original, add the new reference on
    /// the same side and stock.
    OrderReplace = b'U', 35, "order_replace", ORDER_REPLACE {
        original_order_reference_number: u64 @ 11,
        new_order_reference_number: u64 @ 19,
        shares: u32 @ 27,
        price: price4 @ 31,
    }
    /// Trade, non-cross (4.5.1): a match against a non-displayed order.
    Trade = b'P', 44, "trade", TRADE {
        order_reference_number: u64 @ 11,
        buy_sell_indicator: char @ 19,
        shares: u32 @ 20,
        stock: ascii(8) @ 24,
        price: price4 @ 32,
        match_number: u64 @ 36,
    }
    /// Cross Trade (4.5.2): the bulk print of an opening, closing, IPO or
    /// halt cross; shares are 8 bytes here.
    CrossTrade = b'Q', 40, "cross_trade", CROSS_TRADE {
        shares: u64 @ 11,
        stock: ascii(8) @ 19,
        cross_price: price4 @ 27,
        match_number: u64 @ 31,
        cross_type: char @ 39,
    }
    /// Broken Trade / Order Execution (4.5.3).
    BrokenTrade = b'B', 19, "broken_trade", BROKEN_TRADE {
        match_number: u64 @ 11,
    }
    /// Net Order Imbalance Indicator (4.6), before the crosses.
    Noii = b'I', 50, "noii", NOII {
        paired_shares: u64 @ 11,
        imbalance_shares: u64 @ 19,
        imbalance_direction: char @ 27,
        stock: ascii(8) @ 28,
        far_price: price4 @ 36,
        near_price: price4 @ 40,
        current_reference_price: price4 @ 44,
        cross_type: char @ 48,
        price_variation_indicator: char @ 49,
    }
    /// Retail Price Improvement Indicator (4.7).
    Rpii = b'N', 20, "rpii", RPII {
        stock: ascii(8) @ 11,
        interest_flag: char @ 19,
    }
    /// Direct Listing with Capital Raise Price Discovery (4.8).
    DlcrPriceDiscovery = b'O', 48, "dlcr_price_discovery", DLCR_PRICE_DISCOVERY {
        stock: ascii(8) @ 11,
        open_eligibility_status: char @ 19,
        minimum_allowable_price: price4 @ 20,
        maximum_allowable_price: price4 @ 24,
        near_execution_price: price4 @ 28,
        near_execution_time: u64 @ 32,
        lower_price_range_collar: price4 @ 40,
        upper_price_range_collar: price4 @ 44,
    }
}
