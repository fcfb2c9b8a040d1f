//! The stock directory: what the day's `R` (Stock Directory) messages say
//! about each instrument, indexed by stock locate and by symbol.
//!
//! Invariant: `by_symbol` and `by_locate` describe the same set of
//! instruments — a locate maps to a symbol iff that symbol maps back to
//! it. A repeated `R` for a locate replaces its entry (and its old symbol,
//! if the symbol changed); a symbol re-announced under another locate moves
//! there.

use std::collections::HashMap;

use crate::itch::{Message, StockDirectory};
use crate::wire::text;

/// One instrument, as its Stock Directory message describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instrument {
    /// Stock locate code (the index of every later message about it).
    pub locate: u16,
    /// Symbol, trailing spaces removed.
    pub symbol: String,
    /// Market category (`Q` Global Select, `G` Global, `S` Capital, `N`
    /// NYSE, `A` NYSE American, `P` NYSE Arca, `Z` BATS, `V` IEX, ` `).
    pub market_category: u8,
    /// Financial status indicator (`N` normal, `D` deficient, ...).
    pub financial_status_indicator: u8,
    /// Round lot size in shares.
    pub round_lot_size: u32,
    /// `Y` if only round lots are accepted.
    pub round_lots_only: u8,
    /// Issue classification (`C` common stock, `Q` ETF share, ...).
    pub issue_classification: u8,
    /// Issue sub-type (2 characters, e.g. `Z ` not applicable).
    pub issue_sub_type: [u8; 2],
    /// `P` live/production, `T` test.
    pub authenticity: u8,
    /// Short sale threshold indicator (`Y`, `N`, ` `).
    pub short_sale_threshold_indicator: u8,
    /// `Y` if an IPO that has not traded yet.
    pub ipo_flag: u8,
    /// LULD reference price tier (`1`, `2`, ` `).
    pub luld_reference_price_tier: u8,
    /// `Y` if an exchange traded product.
    pub etp_flag: u8,
    /// ETP leverage factor.
    pub etp_leverage_factor: u32,
    /// `Y` if an inverse ETP.
    pub inverse_indicator: u8,
}

impl Instrument {
    /// The instrument a Stock Directory message describes.
    pub fn from_message(r: &StockDirectory<'_>) -> Self {
        Instrument {
            locate: r.stock_locate(),
            symbol: text(r.stock()).to_string(),
            market_category: r.market_category(),
            financial_status_indicator: r.financial_status_indicator(),
            round_lot_size: r.round_lot_size(),
            round_lots_only: r.round_lots_only(),
            issue_classification: r.issue_classification(),
            issue_sub_type: *r.issue_sub_type(),
            authenticity: r.authenticity(),
            short_sale_threshold_indicator: r.short_sale_threshold_indicator(),
            ipo_flag: r.ipo_flag(),
            luld_reference_price_tier: r.luld_reference_price_tier(),
            etp_flag: r.etp_flag(),
            etp_leverage_factor: r.etp_leverage_factor(),
            inverse_indicator: r.inverse_indicator(),
        }
    }
}

/// Locate <-> symbol, and each instrument's attributes.
#[derive(Clone, Debug, Default)]
pub struct SymbolDirectory {
    by_locate: HashMap<u16, Instrument>,
    by_symbol: HashMap<String, u16>,
}

impl SymbolDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in `message` if it is a Stock Directory message; returns
    /// whether it was one.
    pub fn observe(&mut self, message: &Message<'_>) -> bool {
        match message {
            Message::StockDirectory(r) => {
                self.insert(Instrument::from_message(r));
                true
            }
            _ => false,
        }
    }

    /// Adds or replaces an instrument (keeping the two indexes in step).
    pub fn insert(&mut self, instrument: Instrument) {
        if let Some(old) = self.by_locate.remove(&instrument.locate) {
            self.by_symbol.remove(&old.symbol);
        }
        if let Some(old_locate) = self
            .by_symbol
            .insert(instrument.symbol.clone(), instrument.locate)
        {
            if old_locate != instrument.locate {
                self.by_locate.remove(&old_locate);
            }
        }
        self.by_locate.insert(instrument.locate, instrument);
    }

    /// The symbol of `locate`.
    pub fn symbol(&self, locate: u16) -> Option<&str> {
        self.by_locate.get(&locate).map(|i| i.symbol.as_str())
    }

    /// The locate of `symbol` (without padding).
    pub fn locate(&self, symbol: &str) -> Option<u16> {
        self.by_symbol.get(symbol).copied()
    }

    /// Everything known about `locate`.
    pub fn get(&self, locate: u16) -> Option<&Instrument> {
        self.by_locate.get(&locate)
    }

    /// How many instruments are known.
    pub fn len(&self) -> usize {
        self.by_locate.len()
    }

    /// True when no instrument is known.
    pub fn is_empty(&self) -> bool {
        self.by_locate.is_empty()
    }

    /// Every instrument, in locate order.
    pub fn instruments(&self) -> Vec<&Instrument> {
        let mut all: Vec<_> = self.by_locate.values().collect();
        all.sort_by_key(|i| i.locate);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::{decode, MessageBuilder, MessageType};

    fn directory_message(locate: u16, symbol: &str, lot: u32) -> Vec<u8> {
        MessageBuilder::new(MessageType::StockDirectory, locate, 0, 1)
            .ascii::<8>(symbol)
            .char(b'Q')
            .char(b'N')
            .u32(lot)
            .char(b'N')
            .char(b'C')
            .ascii::<2>("Z")
            .char(b'P')
            .char(b'N')
            .char(b'N')
            .char(b'1')
            .char(b'N')
            .u32(0)
            .char(b'N')
            .finish()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn lookups_both_ways_with_attributes() {
        let mut d = SymbolDirectory::new();
        let r = directory_message(5, "AAPL", 100);
        assert!(d.observe(&decode(&r).unwrap()));
        let other = MessageBuilder::new(MessageType::OrderDelete, 5, 0, 2)
            .u64(1)
            .finish()
            .unwrap()
            .to_vec();
        assert!(!d.observe(&decode(&other).unwrap()));
        assert_eq!(d.symbol(5), Some("AAPL"));
        assert_eq!(d.locate("AAPL"), Some(5));
        assert_eq!(d.locate("AAPL    "), None);
        let i = d.get(5).unwrap();
        assert_eq!(
            (
                i.market_category,
                i.round_lot_size,
                i.issue_sub_type,
                i.luld_reference_price_tier
            ),
            (b'Q', 100, *b"Z ", b'1')
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d.symbol(6), None);
    }

    #[test]
    fn re_announcements_keep_both_indexes_in_step() {
        let mut d = SymbolDirectory::new();
        for (locate, symbol) in [(1, "A"), (2, "B"), (1, "C"), (3, "B")] {
            d.observe(&decode(&directory_message(locate, symbol, 100)).unwrap());
        }
        // locate 1 renamed A -> C; B moved from locate 2 to 3.
        assert_eq!(d.locate("A"), None);
        assert_eq!(d.symbol(1), Some("C"));
        assert_eq!(d.symbol(2), None);
        assert_eq!(d.locate("B"), Some(3));
        let all: Vec<_> = d
            .instruments()
            .iter()
            .map(|i| (i.locate, i.symbol.clone()))
            .collect();
        assert_eq!(all, vec![(1, "C".to_string()), (3, "B".to_string())]);
        for i in d.instruments() {
            assert_eq!(d.locate(&i.symbol), Some(i.locate));
        }
    }
}
